/*
 * mix_jitter.c: the per-leg adaptive jitter buffer. See mix_jitter.h for the
 * contract; this header describes the algorithm as implemented.
 *
 * Storage. A packet with sequence number s lives in slot s % MIX_JB_SLOTS.
 * Every held packet lies in [next_seq, next_seq + MIX_JB_SLOTS), so a slot
 * never holds two candidates. All sequence arithmetic is on signed 16-bit
 * differences, so the wrap at 65535 needs no special case.
 *
 * Depth. The depth is the audio from next_seq up to the end of the newest
 * held packet: the held packets' durations, plus an estimate (the last
 * stored packet's duration) for each missing sequence number in between.
 * It is counted by sequence number rather than by timestamp so that a DTX
 * pause inside the buffer (timestamps jump, sequence numbers do not) is not
 * mistaken for buffered audio.
 *
 * Target. Each packet offered (stored or late, not duplicates) adds its
 * transit, arrival - ts, to a window of the last MIX_JB_HISTORY samples,
 * kept both by age and sorted, so an update costs one binary search and one
 * memmove of at most MIX_JB_HISTORY entries. target = p95 - min + frame,
 * clamped to [min_delay, max_delay] and to MIX_JB_SLOTS - 1 frames. With 20 ms packets the window is
 * 2.56 s, so about 2.5 s after a storm ends the target is back to its floor.
 *
 * Playout, one decision per mix_jb_get:
 *  1. Before the first packet: EMPTY. After it (and after a resync), EMPTY
 *     until the depth reaches the target, or the first packet has waited
 *     for the target's duration (a stream of one packet still plays).
 *  2. Nothing held (underrun): LOST without advancing, since the packet
 *     may only be late and waiting for it is how the delay grows. After
 *     JB_STALL_MS of this the sender is taken to be silent (DTX) and the
 *     result is SILENCE, with next_ts moving on a frame per get. When the
 *     last packet played carried an RFC 6464 level with the V bit clear,
 *     the sender told us it went quiet, so SILENCE comes at once.
 *  3. next_seq missing but newer packets held:
 *     - while depth minus one frame still meets the target, the missing
 *       sequence numbers are skipped without producing a frame for them
 *       (counted in lost). After an underrun this stops the gap from being
 *       concealed twice, and it sheds excess delay at no cost;
 *     - else, if depth is below the target and the wait has lasted less
 *       than JB_STALL_MS: LOST without advancing (a reordered packet may
 *       still come; the delay grows towards the target);
 *     - else FEC when next_seq + 1 is held (it stays queued), LOST
 *       otherwise, and next_seq advances.
 *  4. Shrink. When the depth has been above target + max(frame, JB_HYST_MS)
 *     for JB_SHRINK_GETS consecutive gets and both next_seq and next_seq + 1
 *     are held, next_seq is dropped (dropped_delay): one packet per get, as
 *     long as the condition holds.
 *  5. next_seq held: PACKET, unless its timestamp is a frame or more ahead
 *     of next_ts (a DTX pause ends here) and the depth is below the target:
 *     then SILENCE and next_ts advances one frame, until the buffer has
 *     refilled to the target or the pause has been played out. So a talk
 *     spurt after DTX starts at the target delay; a pause already covered
 *     by the buffer is shortened, never lengthened. A timestamp behind
 *     next_ts (a late packet after SILENCE, or a sender that rewound) is
 *     played at once and the timeline follows it.
 *
 * Put. Duplicates (held, or played among the last JB_DUP_WINDOW) and late
 * packets are refused and counted. A packet MIX_JB_SLOTS or more ahead of
 * the newest held one (of next_seq when empty), JB_FAR_BEHIND or more
 * behind next_seq, or the JB_FAR_RUN-th in a row more than JB_DUP_WINDOW
 * behind, means the stream restarted: the buffer is reset (the counters
 * kept) and the packet starts the new stream. While the first fill is in
 * progress a packet just before next_seq is still taken, if the buffer
 * still fits max_delay with it (the first packet to arrive need not be the
 * first sent). After a store, while the depth
 * exceeds max_delay the oldest sequence number goes (dropped_overflow if it
 * was held, lost if it never came); a packet that would not fit the slots
 * pushes the oldest out the same way.
 *
 * Thread: the owner thread (rt in the engine). No allocation, no locks, no
 * syscalls; every loop is bounded by MIX_JB_SLOTS or MIX_JB_HISTORY.
 */
#include "mix_jitter.h"

#include <errno.h>
#include <string.h>

enum {
    JB_MASK = MIX_JB_SLOTS - 1,
    JB_DUP_WINDOW = 64,   /* played seqs remembered: the bits of played_hist */
    JB_FAR_BEHIND = 1000, /* this far behind next_seq: a restart at once */
    JB_FAR_RUN = 3,       /* this many in a row beyond JB_DUP_WINDOW: restart */
    JB_STALL_MS = 80,     /* conceal a missing packet this long, then give up */
    JB_HYST_MS = 20,      /* least margin above target before shrinking */
    JB_SHRINK_GETS = 3,   /* gets above target + margin before a skip */
    JB_PERCENTILE = 95,   /* of transit, for the target */
    JB_MAX_DELAY_S = 10,  /* max_delay bound, keeps time math in int32 */
};

_Static_assert((MIX_JB_SLOTS & JB_MASK) == 0 && MIX_JB_SLOTS <= 256,
               "MIX_JB_SLOTS must be a small power of two");
_Static_assert(JB_DUP_WINDOW == 64, "played_hist is a uint64_t");

/* True when the packet with sequence number @seq is held. */
static bool jb_held(const struct mix_jb *jb, uint16_t seq)
{
    const unsigned i = seq & JB_MASK;

    return jb->used[i] && jb->slot[i].meta.seq == seq;
}

/* Duration of @seq for depth accounting: its own when held, else the
 * estimate (the last stored packet's duration). */
static uint32_t jb_dur_at(const struct mix_jb *jb, uint16_t seq)
{
    return jb_held(jb, seq) ? jb->slot[seq & JB_MASK].meta.duration
                            : jb->last_dur;
}

/* Audio from next_seq to the end of the newest held packet, with missing
 * sequence numbers counted at the estimate. 64-bit because durations come
 * from the network and 32 of them could overflow 32 bits. */
static uint64_t jb_depth64(const struct mix_jb *jb)
{
    uint64_t sum = 0;
    unsigned span;

    if (!jb->started || jb->count == 0)
        return 0;
    span = (uint16_t)(jb->newest - jb->next_seq) + 1u;
    if (span > MIX_JB_SLOTS)
        span = MIX_JB_SLOTS;
    for (unsigned i = 0; i < span; i++)
        sum += jb_dur_at(jb, (uint16_t)(jb->next_seq + i));
    return sum;
}

/* Clock units in @ms milliseconds, but never less than one frame. */
static uint32_t jb_ms(const struct mix_jb *jb, uint32_t ms)
{
    uint32_t v = (uint32_t)((uint64_t)jb->cfg.clock_rate * ms / 1000u);

    return v > jb->cfg.frame ? v : jb->cfg.frame;
}

/* Moves next_seq on by one, remembering whether the old one was played
 * (for duplicate detection). */
static void jb_advance(struct mix_jb *jb, bool played)
{
    jb->played_hist = (jb->played_hist << 1) | (played ? 1u : 0u);
    jb->next_seq++;
}

/* Releases the held packet at next_seq and advances past it. The packet's
 * bytes stay in the slot, so a pointer handed out for it remains valid
 * until the next put or get, as the header promises. */
static const struct mix_jb_packet *jb_take(struct mix_jb *jb, bool played)
{
    const unsigned i = jb->next_seq & JB_MASK;
    const struct mix_jb_packet *p = &jb->slot[i];

    jb->used[i] = false;
    jb->count--;
    jb->next_ts = p->meta.ts + p->meta.duration;
    jb_advance(jb, played);
    return p;
}

/* Gives up the oldest sequence number to bound the delay or make room:
 * counted as dropped_overflow when it was held, lost when it never came. */
static void jb_drop_oldest(struct mix_jb *jb)
{
    if (jb_held(jb, jb->next_seq)) {
        jb_take(jb, false);
        jb->stats.dropped_overflow++;
        return;
    }
    jb->next_ts += jb->last_dur;
    jb->stats.lost++;
    jb_advance(jb, false);
}

/* Recomputes the target from the sorted transit window. */
static void jb_update_target(struct mix_jb *jb)
{
    uint32_t n = jb->transit_n;
    uint32_t p = (n * JB_PERCENTILE + 99u) / 100u - 1u; /* ceil - 1 */
    uint64_t t;

    t = (uint64_t)(uint32_t)(jb->sorted[p] - jb->sorted[0]) + jb->cfg.frame;
    if (t < jb->cfg.min_delay)
        t = jb->cfg.min_delay;
    if (t > jb->cfg.max_delay)
        t = jb->cfg.max_delay;
    /* A target the slots cannot hold would never be reached, and the
     * buffer would wait for it forever. One slot is left for reordering. */
    if (t > (uint64_t)(MIX_JB_SLOTS - 1) * jb->cfg.frame)
        t = (uint64_t)(MIX_JB_SLOTS - 1) * jb->cfg.frame;
    jb->target = (uint32_t)t;
}

/* First index in sorted[0..n) whose value is >= @v (or > @v if @after). */
static uint32_t jb_search(const int32_t *sorted, uint32_t n, int32_t v,
                          bool after)
{
    uint32_t lo = 0, hi = n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (sorted[mid] < v || (after && sorted[mid] == v))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Adds @meta's transit to the window, dropping the oldest sample when the
 * window is full, and updates the target. Samples are taken relative to
 * the first packet's transit so that they sort correctly whatever the
 * absolute values of the two clocks. */
static void jb_transit_add(struct mix_jb *jb, const struct mix_jb_meta *meta)
{
    int32_t v = (int32_t)(meta->arrival - meta->ts - jb->transit_base);
    uint32_t n = jb->transit_n;
    uint32_t i;

    if (n == MIX_JB_HISTORY) {
        i = jb_search(jb->sorted, n, jb->transit[jb->transit_pos], false);
        memmove(&jb->sorted[i], &jb->sorted[i + 1],
                (n - i - 1) * sizeof(jb->sorted[0]));
        n--;
    }
    i = jb_search(jb->sorted, n, v, true);
    memmove(&jb->sorted[i + 1], &jb->sorted[i], (n - i) * sizeof(jb->sorted[0]));
    jb->sorted[i] = v;
    jb->transit_n = n + 1;
    jb->transit[jb->transit_pos] = v;
    jb->transit_pos = (jb->transit_pos + 1) % MIX_JB_HISTORY;
    jb_update_target(jb);
}

/* Copies a packet into its slot. The caller has checked that the slot is
 * free for it (seq within MIX_JB_SLOTS of next_seq, not held). */
static void jb_store(struct mix_jb *jb, const struct mix_jb_meta *meta,
                     const uint8_t *data, uint32_t len)
{
    struct mix_jb_packet *p = &jb->slot[meta->seq & JB_MASK];

    p->meta = *meta;
    if (p->meta.duration == 0)
        p->meta.duration = jb->cfg.frame;
    p->len = (uint16_t)len;
    memcpy(p->data, data, len);
    jb->used[meta->seq & JB_MASK] = true;
    if (jb->count == 0 || (int16_t)(meta->seq - jb->newest) > 0)
        jb->newest = meta->seq;
    jb->count++;
    jb->last_dur = p->meta.duration;
}

/* Drops the oldest sequence numbers while the depth exceeds max_delay, but
 * always keeps the newest packet. */
static void jb_trim(struct mix_jb *jb)
{
    uint64_t depth = jb_depth64(jb);

    for (unsigned i = 0; i < MIX_JB_SLOTS && jb->count > 0 &&
                         depth > jb->cfg.max_delay && jb->newest != jb->next_seq;
         i++) {
        depth -= jb_dur_at(jb, jb->next_seq);
        jb_drop_oldest(jb);
    }
}

/* Starts a stream at @meta: it is the first packet to play. */
static void jb_start(struct mix_jb *jb, const struct mix_jb_meta *meta)
{
    jb->started = true;
    jb->buffering = true;
    jb->buf_since = meta->arrival;
    jb->next_seq = meta->seq;
    jb->next_ts = meta->ts;
    jb->transit_base = meta->arrival - meta->ts;
}

/* Stores @meta as the first packet of a new stream. Returns @res. */
static enum mix_jb_put_result jb_put_first(struct mix_jb *jb,
                                           const struct mix_jb_meta *meta,
                                           const uint8_t *data, uint32_t len,
                                           enum mix_jb_put_result res)
{
    jb_start(jb, meta);
    jb_store(jb, meta, data, len);
    jb_transit_add(jb, meta);
    return res;
}

/* The stream jumped: forget it, keep the counters, start again at @meta. */
static enum mix_jb_put_result jb_resync(struct mix_jb *jb,
                                        const struct mix_jb_meta *meta,
                                        const uint8_t *data, uint32_t len)
{
    mix_jb_reset(jb);
    jb->stats.resync++;
    return jb_put_first(jb, meta, data, len, MIX_JB_PUT_RESYNC);
}

/* A packet at or after next_seq. */
static enum mix_jb_put_result jb_put_ahead(struct mix_jb *jb,
                                           const struct mix_jb_meta *meta,
                                           const uint8_t *data, uint32_t len)
{
    uint16_t ref = jb->count > 0 ? jb->newest : jb->next_seq;

    if ((int16_t)(meta->seq - ref) >= MIX_JB_SLOTS)
        return jb_resync(jb, meta, data, len);
    jb->far_run = 0;
    if (jb_held(jb, meta->seq)) {
        jb->stats.duplicate++;
        return MIX_JB_PUT_DUPLICATE;
    }
    /* Within MIX_JB_SLOTS of the newest but not of next_seq: the oldest
     * must go to free the slot. At most MIX_JB_SLOTS turns, by the test
     * above. */
    for (unsigned i = 0; i <= MIX_JB_SLOTS &&
                         (uint16_t)(meta->seq - jb->next_seq) >= MIX_JB_SLOTS;
         i++)
        jb_drop_oldest(jb);
    jb_store(jb, meta, data, len);
    jb_transit_add(jb, meta);
    jb_trim(jb);
    return MIX_JB_PUT_OK;
}

/* A packet before next_seq: a duplicate, late, a restart, or (during the
 * first fill) an earlier packet of the stream that arrived second. */
static enum mix_jb_put_result jb_put_behind(struct mix_jb *jb,
                                            const struct mix_jb_meta *meta,
                                            const uint8_t *data, uint32_t len)
{
    uint32_t back = (uint16_t)(jb->next_seq - meta->seq);

    /* Only while the new start still fits max_delay: after a trim the
     * sequence numbers before next_seq are already counted, and must not
     * come back to be counted twice. */
    if (jb->buffering && back < MIX_JB_SLOTS &&
        (uint16_t)(jb->newest - meta->seq) < MIX_JB_SLOTS &&
        jb_depth64(jb) + (uint64_t)back * jb->last_dur <= jb->cfg.max_delay) {
        jb->far_run = 0;
        jb->next_seq = meta->seq;
        jb->next_ts = meta->ts;
        jb_store(jb, meta, data, len);
        jb_transit_add(jb, meta);
        return MIX_JB_PUT_OK;
    }
    if (back <= JB_DUP_WINDOW && ((jb->played_hist >> (back - 1)) & 1u)) {
        jb->far_run = 0;
        jb->stats.duplicate++;
        return MIX_JB_PUT_DUPLICATE;
    }
    if (back >= JB_FAR_BEHIND)
        return jb_resync(jb, meta, data, len);
    if (back > JB_DUP_WINDOW) {
        /* One stray packet this late is possible; several in a row are a
         * sender that restarted a little behind us. Their transit would
         * only pollute the window. */
        if (++jb->far_run >= JB_FAR_RUN)
            return jb_resync(jb, meta, data, len);
        jb->stats.late++;
        return MIX_JB_PUT_LATE;
    }
    jb->far_run = 0;
    /* A late packet is the best evidence of jitter: its transit counts. */
    jb_transit_add(jb, meta);
    jb->stats.late++;
    return MIX_JB_PUT_LATE;
}

/*
 * Validates @cfg and sets @jb up empty. Returns 0, or -EINVAL when a field
 * is zero or out of order (frame <= min_delay <= max_delay), max_delay
 * exceeds ten seconds, or min_delay needs more than MIX_JB_SLOTS - 1 frames.
 * A max_delay above that is accepted; the slots bound the depth anyway.
 */
int mix_jb_init(struct mix_jb *jb, const struct mix_jb_config *cfg)
{
    if (jb == NULL || cfg == NULL || cfg->clock_rate == 0 || cfg->frame == 0 ||
        cfg->min_delay < cfg->frame || cfg->max_delay < cfg->min_delay ||
        cfg->max_delay > (uint64_t)cfg->clock_rate * JB_MAX_DELAY_S ||
        cfg->min_delay > (uint64_t)cfg->frame * (MIX_JB_SLOTS - 1))
        return -EINVAL;
    memset(jb, 0, sizeof(*jb));
    jb->cfg = *cfg;
    mix_jb_reset(jb);
    return 0;
}

/*
 * Forgets the stream: held packets, timeline, jitter window (a new stream
 * has a new timestamp base, so old transits mean nothing). Keeps cfg and
 * stats. Touches only the flags of the slots, not their bytes.
 */
void mix_jb_reset(struct mix_jb *jb)
{
    memset(jb->used, 0, sizeof(jb->used));
    jb->started = false;
    jb->buffering = false;
    jb->stalled = false;
    jb->sender_silent = false;
    jb->far_run = 0;
    jb->next_seq = 0;
    jb->newest = 0;
    jb->count = 0;
    jb->next_ts = 0;
    jb->last_dur = jb->cfg.frame;
    jb->buf_since = 0;
    jb->stall_since = 0;
    jb->over_target = 0;
    jb->played_hist = 0;
    jb->transit_base = 0;
    jb->transit_n = 0;
    jb->transit_pos = 0;
    jb->target = jb->cfg.min_delay;
}

/*
 * Offers one packet; see the file header for the rules. Returns
 * MIX_JB_PUT_OK or MIX_JB_PUT_RESYNC when the packet was stored, another
 * value (counted in stats) when it was not. Bad input is counted, never
 * trusted: a zero or oversized length (or no data) is MIX_JB_PUT_OVERSIZE.
 */
enum mix_jb_put_result mix_jb_put(struct mix_jb *jb,
                                  const struct mix_jb_meta *meta,
                                  const uint8_t *data, uint32_t len)
{
    jb->stats.received++;
    if (len == 0 || len > MIX_JB_MAX_PAYLOAD || data == NULL) {
        jb->stats.oversize++;
        return MIX_JB_PUT_OVERSIZE;
    }
    if (!jb->started)
        return jb_put_first(jb, meta, data, len, MIX_JB_PUT_OK);
    if ((int16_t)(meta->seq - jb->next_seq) >= 0)
        return jb_put_ahead(jb, meta, data, len);
    return jb_put_behind(jb, meta, data, len);
}

/* Fills @out with a concealment or silence frame. */
static void jb_out_frame(struct mix_jb *jb, struct mix_jb_out *out,
                         enum mix_jb_kind kind)
{
    out->kind = kind;
    out->pkt = NULL;
    out->duration = jb->cfg.frame;
    if (kind == MIX_JB_LOST)
        jb->stats.concealed++;
}

/* Starts (or continues) a stall at @now; returns true while it is younger
 * than JB_STALL_MS. */
static bool jb_stall_young(struct mix_jb *jb, uint32_t now)
{
    if (!jb->stalled) {
        jb->stalled = true;
        jb->stall_since = now;
    }
    return (uint32_t)(now - jb->stall_since) < jb_ms(jb, JB_STALL_MS);
}

/* Nothing held: the next packet is late, or the sender has stopped. */
static void jb_underrun(struct mix_jb *jb, uint32_t now, struct mix_jb_out *out)
{
    jb->over_target = 0;
    if (jb_stall_young(jb, now) && !jb->sender_silent) {
        jb_out_frame(jb, out, MIX_JB_LOST);
        return;
    }
    /* The sender is silent: keep the timeline moving so that the talk
     * spurt after the pause is measured against the right time. */
    jb->next_ts += jb->cfg.frame;
    jb_out_frame(jb, out, MIX_JB_SILENCE);
}

/* next_seq missing, newer packets held: skip missing sequence numbers for
 * free while the buffer stays at or above target without them. */
static void jb_skip_missing(struct mix_jb *jb)
{
    uint64_t depth = jb_depth64(jb);

    for (unsigned i = 0; i < MIX_JB_SLOTS && !jb_held(jb, jb->next_seq); i++) {
        if (depth < (uint64_t)jb->target + jb->last_dur)
            break;
        depth -= jb->last_dur;
        jb->next_ts += jb->last_dur;
        jb->stats.lost++;
        jb_advance(jb, false);
    }
}

/* Drops one held packet when the depth has stayed above target plus the
 * margin for JB_SHRINK_GETS gets. Only when the packet after it is held
 * too, so shrinking never creates a gap. */
static void jb_shrink(struct mix_jb *jb)
{
    uint64_t limit = (uint64_t)jb->target + jb_ms(jb, JB_HYST_MS);

    if (jb_depth64(jb) <= limit) {
        jb->over_target = 0;
        return;
    }
    if (jb->over_target < JB_SHRINK_GETS)
        jb->over_target++;
    if (jb->over_target < JB_SHRINK_GETS || !jb_held(jb, jb->next_seq) ||
        !jb_held(jb, (uint16_t)(jb->next_seq + 1)))
        return;
    jb_take(jb, false);
    jb->stats.dropped_delay++;
}

/* next_seq is held: play it, or hold it back at the end of a DTX pause. */
static void jb_play(struct mix_jb *jb, struct mix_jb_out *out)
{
    const struct mix_jb_packet *p = &jb->slot[jb->next_seq & JB_MASK];
    int32_t ahead = (int32_t)(p->meta.ts - jb->next_ts);

    jb->stalled = false;
    if (ahead >= (int32_t)jb->cfg.frame && jb_depth64(jb) < jb->target) {
        jb->next_ts += jb->cfg.frame;
        jb_out_frame(jb, out, MIX_JB_SILENCE);
        return;
    }
    p = jb_take(jb, true);
    jb->sender_silent = p->meta.level != MIX_JB_LEVEL_NONE && p->meta.vad == 0;
    jb->stats.played++;
    out->kind = MIX_JB_PACKET;
    out->pkt = p;
    out->duration = p->meta.duration;
}

/* next_seq missing, a newer packet held, and the free skip did not apply:
 * wait, or give next_seq up as FEC or LOST. */
static void jb_missing(struct mix_jb *jb, uint32_t now, struct mix_jb_out *out)
{
    const uint16_t after = (uint16_t)(jb->next_seq + 1);
    const struct mix_jb_packet *p;

    if (jb_depth64(jb) < jb->target && jb_stall_young(jb, now)) {
        jb_out_frame(jb, out, MIX_JB_LOST);
        return;
    }
    /* The stall stays on until a packet plays: once a wait has run out,
     * further gaps in the same stretch are not waited for again. */
    jb->stats.lost++;
    if (!jb_held(jb, after)) {
        jb->next_ts += jb->last_dur;
        jb_advance(jb, false);
        jb_out_frame(jb, out, MIX_JB_LOST);
        return;
    }
    p = &jb->slot[after & JB_MASK];
    jb->next_ts = p->meta.ts;
    jb_advance(jb, false);
    jb->stats.fec++;
    out->kind = MIX_JB_FEC;
    out->pkt = p;
    out->duration = p->meta.duration;
}

/*
 * Decides what to play for the frame starting at @now; see the file header
 * for the rules. Always fills @out. For PACKET and FEC, out->pkt points into
 * the buffer and stays valid until the next put or get.
 */
void mix_jb_get(struct mix_jb *jb, uint32_t now, struct mix_jb_out *out)
{
    jb_out_frame(jb, out, MIX_JB_EMPTY);
    if (!jb->started)
        return;
    if (jb->buffering) {
        if (jb_depth64(jb) < jb->target &&
            (int32_t)(now - jb->buf_since) < (int32_t)jb->target)
            return;
        jb->buffering = false;
    }
    if (jb->count == 0) {
        jb_underrun(jb, now, out);
        return;
    }
    jb_skip_missing(jb);
    jb_shrink(jb);
    if (jb_held(jb, jb->next_seq))
        jb_play(jb, out);
    else
        jb_missing(jb, now, out);
}

/* Audio buffered ahead of playout, clock units; saturates at UINT32_MAX. */
uint32_t mix_jb_depth(const struct mix_jb *jb)
{
    uint64_t d = jb_depth64(jb);

    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* Current target depth, clock units. */
uint32_t mix_jb_target(const struct mix_jb *jb)
{
    return jb->target;
}
