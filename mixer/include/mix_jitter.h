/*
 * mix_jitter.h: the per-leg adaptive jitter buffer.
 *
 * Written for this engine because speexdsp's buffer leaks packets that
 * arrive very late (Janus PR #3348). It stores encoded packets in a fixed
 * array of slots (no allocation after init), orders them by RTP sequence
 * number (16-bit, wrap-aware), and on each playout call says what to play
 * for the next frame: a packet, an FEC rebuild from the following packet,
 * a concealment (PLC), or silence. Decoding is the caller's job; this module
 * knows nothing of Opus, so it can be tested with plain tables.
 *
 * Time. Every time value is in units of the RTP clock of the stream
 * (48000 Hz for Opus, 8000 Hz for G.711): packet timestamps, durations,
 * arrival times (the caller converts its monotonic clock), delays.
 *
 * Delay adaptation. For each packet the buffer records its relative transit
 * (arrival - timestamp). Over a sliding window of the last
 * MIX_JB_HISTORY packets it takes the spread between the minimum transit and
 * a high percentile (95th) of transit: that is the jitter that must be
 * absorbed. The target depth is that spread plus one frame, clamped to
 * [min_delay, max_delay]. When the buffered depth stays above target plus a
 * hysteresis margin, playout skips a packet (counted in dropped_delay) so
 * that after a jitter storm the delay falls back to a small depth instead
 * of staying large. Depth can never exceed max_delay nor the slot count:
 * the oldest packets are dropped first. A missing packet is waited for
 * (concealed without advancing) while the buffer is below target, which is
 * how the delay grows. mix_jitter.c describes the algorithm in full.
 *
 * Thread: one owner thread (the mixer's real-time thread in the engine; the
 * test thread in tests). Nothing here allocates, locks or blocks.
 */
#ifndef MIX_JITTER_H
#define MIX_JITTER_H

#include <stdbool.h>
#include <stdint.h>

enum {
    MIX_JB_SLOTS = 32,          /* power of two; packets held at most */
    MIX_JB_MAX_PAYLOAD = 1280,  /* largest packet payload (Opus max 1275) */
    MIX_JB_HISTORY = 128,       /* transit samples in the jitter window */
    MIX_JB_LEVEL_NONE = 0xff,   /* packet carried no RFC 6464 level */
};

/* Result of mix_jb_put. Everything but MIX_JB_PUT_OK means the packet was
 * not stored; each case has its own counter in struct mix_jb_stats. */
enum mix_jb_put_result {
    MIX_JB_PUT_OK = 0,
    MIX_JB_PUT_DUPLICATE,   /* same sequence number already held or played */
    MIX_JB_PUT_LATE,        /* its turn has already passed */
    MIX_JB_PUT_OVERSIZE,    /* payload larger than MIX_JB_MAX_PAYLOAD or 0 */
    MIX_JB_PUT_RESYNC,      /* stored, but the stream jumped: buffer was reset */
};

/* What mix_jb_get says to play for the next frame. */
enum mix_jb_kind {
    MIX_JB_EMPTY = 0,  /* nothing started yet, or (re)buffering: play silence */
    MIX_JB_PACKET,     /* decode out->pkt normally */
    MIX_JB_FEC,        /* one packet lost, the next is held: decode the lost
                          frame from out->pkt's in-band FEC (Opus decode_fec=1);
                          out->pkt stays queued for the following call */
    MIX_JB_LOST,       /* lost or not yet here: conceal (Opus PLC) */
    MIX_JB_SILENCE,    /* sender is silent (DTX gap / long underrun): play
                          silence, no decode needed */
};

struct mix_jb_config {
    uint32_t clock_rate;  /* RTP clock, Hz (48000 or 8000) */
    uint32_t frame;       /* playout frame duration, clock units */
    uint32_t min_delay;   /* lower bound of the target depth (>= frame) */
    uint32_t max_delay;   /* hard bound of depth, e.g. 200 ms of clock */
};

/* Metadata of one packet, filled by the network side from the RTP header. */
struct mix_jb_meta {
    uint16_t seq;       /* RTP sequence number */
    uint32_t ts;        /* RTP timestamp */
    uint32_t duration;  /* samples of audio in the packet, clock units
                           (the caller asks the codec; 0 means one frame) */
    uint32_t arrival;   /* arrival time, clock units, monotonic */
    uint8_t level;      /* RFC 6464 level 0..127 (-dBov) or MIX_JB_LEVEL_NONE */
    uint8_t vad;        /* RFC 6464 V bit, 0 when absent */
};

struct mix_jb_packet {
    struct mix_jb_meta meta;
    uint16_t len;
    uint8_t data[MIX_JB_MAX_PAYLOAD];
};

struct mix_jb_out {
    enum mix_jb_kind kind;
    /* For PACKET and FEC: the packet to decode. It points into the buffer and
     * stays valid until the next call to mix_jb_put or mix_jb_get. */
    const struct mix_jb_packet *pkt;
    /* Duration of the frame to produce, clock units: the packet's duration
     * for PACKET and FEC, one frame otherwise. */
    uint32_t duration;
};

/* Counters. Plain integers owned by the buffer's thread; the engine copies
 * them into its atomic counters. */
struct mix_jb_stats {
    uint64_t received;       /* packets offered to mix_jb_put */
    uint64_t played;         /* MIX_JB_PACKET results */
    uint64_t duplicate;      /* MIX_JB_PUT_DUPLICATE */
    uint64_t late;           /* MIX_JB_PUT_LATE */
    uint64_t oversize;       /* MIX_JB_PUT_OVERSIZE */
    uint64_t resync;         /* stream jumps that reset the buffer */
    uint64_t lost;           /* sequence numbers never played because they
                                did not arrive in time (incl. FEC); packets
                                dropped on purpose count in dropped_* */
    uint64_t fec;            /* MIX_JB_FEC results */
    uint64_t concealed;      /* MIX_JB_LOST results */
    uint64_t dropped_delay;  /* packets skipped to shrink the delay */
    uint64_t dropped_overflow; /* packets dropped because depth hit max_delay
                                  or the slots were full */
};

/* The buffer. The caller allocates it (about 42 KiB) and calls mix_jb_init;
 * the engine reads cfg and stats, every other field is private to
 * mix_jitter.c. Thread: the owner thread only (see the top of this file). */
struct mix_jb {
    struct mix_jb_config cfg;          /* read-only after init */
    struct mix_jb_stats stats;         /* read-only for the engine */
    /* private */
    struct mix_jb_packet slot[MIX_JB_SLOTS]; /* indexed by seq % MIX_JB_SLOTS */
    bool used[MIX_JB_SLOTS];           /* slot holds a packet not yet played */
    bool started;                      /* a packet has been stored since reset */
    bool buffering;                    /* first fill: waiting for the target */
    bool stalled;                      /* next_seq missing, gets not advancing */
    bool sender_silent;                /* last played packet said VAD off */
    uint8_t far_run;                   /* consecutive packets far behind */
    uint16_t next_seq;                 /* sequence number to play next */
    uint16_t newest;                   /* highest seq held (when count > 0) */
    uint16_t count;                    /* packets held */
    uint32_t next_ts;                  /* expected timestamp of next_seq */
    uint32_t last_dur;                 /* duration assumed for a missing packet */
    uint32_t buf_since;                /* arrival that started the first fill */
    uint32_t stall_since;              /* @now of the first stalled get */
    uint32_t over_target;              /* consecutive gets above target + margin */
    uint64_t played_hist;              /* bit i set: seq next_seq-1-i was played */
    uint32_t transit_base;             /* arrival - ts of the first packet */
    int32_t transit[MIX_JB_HISTORY];   /* window of arrival - ts - base, by age */
    int32_t sorted[MIX_JB_HISTORY];    /* the same samples, ascending */
    uint32_t transit_n;                /* samples in the window (<= HISTORY) */
    uint32_t transit_pos;              /* next transit[] entry to overwrite */
    uint32_t target;                   /* current target depth, clock units */
};

/* Initialises @jb. Returns 0, or -EINVAL when the config is inconsistent. */
int mix_jb_init(struct mix_jb *jb, const struct mix_jb_config *cfg);

/* Empties the buffer and forgets the stream (counters are kept). */
void mix_jb_reset(struct mix_jb *jb);

/* Offers one packet. Copies @len bytes of @data. */
enum mix_jb_put_result mix_jb_put(struct mix_jb *jb,
                                  const struct mix_jb_meta *meta,
                                  const uint8_t *data, uint32_t len);

/* Decides what to play for the next frame at time @now (clock units).
 * Always fills @out. */
void mix_jb_get(struct mix_jb *jb, uint32_t now, struct mix_jb_out *out);

/* Audio buffered ahead of playout, clock units (0 when empty). */
uint32_t mix_jb_depth(const struct mix_jb *jb);

/* Current target depth, clock units. */
uint32_t mix_jb_target(const struct mix_jb *jb);

#endif /* MIX_JITTER_H */
