/*
 * mix_engine.h: the real-time mixing engine.
 *
 * An engine owns one or more mixing workers (threads). Each worker runs a
 * fixed 10 ms cycle paced by absolute CLOCK_MONOTONIC deadlines and mixes the
 * rooms assigned to it; a room with 20 or 40 ms frames is processed every
 * second or fourth cycle, at a phase chosen so that rooms spread over cycles.
 *
 * Threads and ownership
 * ---------------------
 *  - "loop" is the one thread that controls the engine: it creates and
 *    destroys rooms and legs, changes settings, pushes received packets,
 *    pops packets to send and polls events. In the bridge that is the libuv
 *    loop thread; in tests it is the test thread. All functions marked
 *    "Thread: loop" must be called from that same thread.
 *  - "rt" is a mixing worker. It never allocates, frees, locks, logs or
 *    blocks (mix_rt.h lets tests check that).
 *  - Everything between them goes through SPSC rings (mix_ring.h): per worker
 *    a command ring (loop -> rt) and an event ring (rt -> loop); per leg an
 *    input ring of encoded packets (loop -> rt) and an output ring (rt -> loop).
 *  - Objects (rooms, legs, encoder groups, codec states) are built whole on
 *    the loop thread and handed to rt by a command; rt links them between
 *    cycles. Removal is the reverse: rt unlinks and posts the object back in
 *    an event, and mix_engine_poll frees it on the loop thread. So a pointer
 *    returned here stays valid until its *_RELEASED event has been delivered.
 *  - Counters (mix_engine_stats, mix_leg_stats) are relaxed atomics written by
 *    rt and readable from any thread without locks.
 *
 * Manual mode: an engine that is never started can be driven cycle by cycle
 * with mix_engine_run_cycle from the loop thread (tests and benchmarks). The
 * cycle then runs under the same real-time flag as the worker thread.
 */
#ifndef MIX_ENGINE_H
#define MIX_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

enum {
    MIX_MAX_WORKERS = 16,
    MIX_CYCLE_MS = 10,            /* worker period */
    MIX_MAX_K = 16,               /* largest "loudest talkers" setting */
    MIX_DEFAULT_K = 3,
    MIX_MAX_EXCLUDE = 16,         /* speakers one listener can exclude */
    MIX_MAX_GROUPS = 8,           /* encoder configurations per room */
    MIX_MAX_PACKET = 1275,        /* largest encoded frame handed out */
    MIX_KEEPALIVE_MS = 3000,      /* silence suppression keep-alive bound */
    MIX_MAX_FRAME_48K = 1920,     /* 40 ms at 48 kHz */
};

enum mix_codec {
    MIX_CODEC_OPUS = 0,
    MIX_CODEC_PCMU,
    MIX_CODEC_PCMA,
};

struct mix_engine;
struct mix_room;
struct mix_leg;

typedef void (*mix_wake_cb)(void *data);

struct mix_engine_config {
    unsigned workers;       /* mixing threads (default 1) */
    bool realtime;          /* ask for SCHED_FIFO (falls back silently) */
    int rt_priority;        /* SCHED_FIFO priority (default 20) */
    /* Called from rt after a cycle that produced output or events, at most
     * once until the loop calls mix_engine_poll (coalesced). Must be
     * async-signal-grade: uv_async_send is the intended callee. May be NULL. */
    mix_wake_cb wake;
    void *wake_data;
};

struct mix_room_settings {
    uint32_t rate;          /* 8000, 16000, 24000 or 48000 (default 48000);
                               fixed for the life of the room */
    uint32_t frame_ms;      /* 10, 20 (default) or 40; fixed */
    uint32_t talkers;       /* K loudest talkers mixed, 1..MIX_MAX_K (3) */
    bool silence_suppression; /* off by default */
    bool comfort_noise;     /* add low-level noise to every mix */
    int comfort_noise_dbov; /* its level, e.g. -70 (default) */
    /* Send a listener who hears exactly one talker that talker's own
     * packets, without decoding or encoding (off by default). Saves most of
     * the encodes of small rooms, at a price: when a second talker starts,
     * the listener's decoder switches from the talker's encoder to the
     * bridge's mid-stream, an audible transient. A listener only starts
     * being forwarded at the start of a talk spurt (it heard nobody in the
     * frame before), never back mid-speech; a packet the talker lost is
     * passed on as a loss (MIX_OUT_LOST) so the listener conceals it with
     * the talker's own FEC. */
    bool forward_single_talker;
    /* Benchmark baseline only: decode every leg (silent or not), no top-K,
     * no forwarding, and one encode per listener (what Janus AudioBridge
     * and FreeSWITCH do). Fixed. */
    bool naive;
};

struct mix_leg_config {
    uint32_t id;            /* caller's id, echoed in events */
    void *user;             /* caller's pointer, echoed in events */
    enum mix_codec codec;
    uint32_t rate;          /* Opus decode/encode rate: 8000, 12000, 16000,
                               24000 or 48000 (default 48000); G.711: 8000 */
    uint32_t bitrate;       /* Opus bitrate, bps (0: a default per rate) */
    int complexity;         /* Opus complexity 0..10 (default 10; -1 too) */
    uint32_t in_ring_bytes; /* input ring size, power of two (default 8192) */
    uint32_t out_ring_bytes;/* output ring size, power of two (default 8192) */
};

/* Metadata the network side attaches to a received packet. */
struct mix_in_meta {
    uint16_t seq;           /* RTP sequence number */
    uint32_t ts;            /* RTP timestamp (48 kHz for Opus, 8 kHz G.711) */
    uint64_t arrival_ns;    /* CLOCK_MONOTONIC receive time */
    uint8_t level;          /* RFC 6464 level 0..127, or 0xff if absent */
    uint8_t vad;            /* RFC 6464 V bit */
};

enum mix_out_flags {
    MIX_OUT_MARKER = 1 << 0,    /* first packet of a talk spurt (RTP M bit) */
    MIX_OUT_KEEPALIVE = 1 << 1, /* silence-suppression keep-alive */
    MIX_OUT_LOST = 1 << 2,      /* no payload (len 0): a frame is missing
                                   here; advance the RTP sequence number and
                                   send nothing, so the receiver conceals it */
};

/* Metadata of a packet to send to a leg. */
struct mix_out_meta {
    uint32_t ts;            /* RTP timestamp of the frame (codec clock, from
                               a per-room origin of 0; add a random offset) */
    uint16_t len;           /* payload bytes */
    uint8_t flags;          /* enum mix_out_flags */
    uint8_t level;          /* RFC 6464 level of the mix sent (6465-style) */
};

enum mix_event_type {
    MIX_EV_TALKING = 1,     /* leg started talking */
    MIX_EV_STOPPED_TALKING, /* leg stopped talking (also when it leaves) */
    MIX_EV_LEG_RELEASED,    /* leg unlinked; freed right after the callback */
    MIX_EV_ROOM_RELEASED,   /* room unlinked; freed right after the callback */
    MIX_EV_RT_PRIORITY,     /* worker scheduling: value 1 realtime, else -errno */
    MIX_EV_LATE_CYCLE,      /* a cycle missed its deadline; value = µs late */
};

struct mix_event {
    enum mix_event_type type;
    uint32_t room_id;
    void *room_user;
    uint32_t leg_id;
    void *leg_user;
    int64_t value;
    unsigned worker;
};

typedef void (*mix_event_cb)(const struct mix_event *ev, void *data);

/* Busy-cycle durations in µs, 8 buckets per octave (12.5 % resolution):
 * values below 8 µs have a bucket each, then bucket 8 * (msb - 2) + the three
 * bits below the most significant one. The last bucket takes everything
 * from about 1 s up. */
enum { MIX_TICK_BUCKETS = 152 };

struct mix_engine_stats {
    uint64_t cycles;         /* cycles run (all workers) */
    uint64_t busy_cycles;    /* cycles that mixed at least one room */
    uint64_t missed;         /* cycles that ended after their deadline */
    uint64_t encodes;        /* encoder calls, total */
    uint64_t decodes;        /* decoder calls, total */
    uint64_t last_encodes;   /* encoder calls in the last busy cycle */
    uint64_t max_cycle_ns;   /* longest cycle */
    uint64_t hist[MIX_TICK_BUCKETS]; /* busy-cycle durations, see above */
    uint64_t busy_ns;        /* sum of busy-cycle durations */
    uint64_t rooms;          /* rooms linked */
    uint64_t legs;           /* legs linked */
    uint64_t cmd_full;       /* commands that found the ring full and waited
                                on the loop side (none is ever refused) */
};

struct mix_leg_stats {
    uint64_t packets_in;     /* pushed by the network side */
    uint64_t in_dropped;     /* refused: input ring full */
    uint64_t packets_out;    /* handed to the network side */
    uint64_t out_dropped;    /* lost: output ring full */
    uint64_t bytes_in, bytes_out;
    uint64_t late, lost, duplicate, concealed, fec_recovered;
    uint64_t dropped_delay, resync, invalid;
    uint64_t overflow;       /* dropped: jitter buffer full (sender too fast
                                or mixer overloaded) */
    uint64_t decodes, encodes_own;
    uint64_t forwarded;      /* frames sent as the single talker's own
                                packet, without decode or encode */
    uint32_t jb_depth_ms;    /* jitter buffer depth now */
    uint32_t jb_target_ms;   /* and its adaptive target */
    uint32_t level;          /* last RFC 6464 level heard from the leg */
    bool talking;
    bool mixed;              /* among the K loudest in the last frame */
};

/* ---- engine (Thread: loop) ---- */

/* Allocates an engine. Returns 0 or -EINVAL / -ENOMEM. */
int mix_engine_new(const struct mix_engine_config *cfg, struct mix_engine **out);

/* Starts the worker threads. Returns 0 or a negative errno. */
int mix_engine_start(struct mix_engine *e);

/* Stops and joins the worker threads, then applies on the calling thread
 * every command still queued, so that the next mix_engine_poll delivers
 * every release. Safe to call twice. */
void mix_engine_stop(struct mix_engine *e);

/* Frees the engine and every room and leg still in it. Stop it first. */
void mix_engine_free(struct mix_engine *e);

/* Manual mode: runs one cycle of @worker now, on the calling thread.
 * Returns -EBUSY when the workers are running. */
int mix_engine_run_cycle(struct mix_engine *e, unsigned worker);

/* Delivers pending events to @cb and frees released objects (after their
 * callback). Returns the number of events delivered. */
int mix_engine_poll(struct mix_engine *e, mix_event_cb cb, void *data);

/* Thread: loop. The engine's clock, CLOCK_MONOTONIC ns: in manual mode a
 * virtual clock that starts at 1 s and advances 10 ms per cycle, so tests can
 * stamp mix_in_meta.arrival_ns deterministically. */
uint64_t mix_engine_now_ns(const struct mix_engine *e);

/* Thread: any. */
void mix_engine_stats(const struct mix_engine *e, struct mix_engine_stats *out);

/* Thread: any. Percentile (0..100) of busy-cycle duration in µs, from the
 * histogram (upper bound of the bucket, so at most 12.5 % high). */
uint64_t mix_engine_cycle_percentile_us(const struct mix_engine_stats *s,
                                        double pct);

/* Thread: any. Exclusive upper bound, in µs, of histogram bucket @b (for
 * exporting the histogram, e.g. as Prometheus buckets). */
uint64_t mix_engine_hist_upper_us(unsigned b);

/* ---- rooms (Thread: loop) ---- */

void mix_room_settings_default(struct mix_room_settings *s);

/* Creates a room and hands it to a worker. Returns 0, -EINVAL for bad
 * settings, or -ENOMEM. Like every command, it is never refused for a full
 * ring: it waits on the loop side, in order (mix_engine_stats.cmd_full). */
int mix_room_new(struct mix_engine *e, uint32_t id, void *user,
                 const struct mix_room_settings *s, struct mix_room **out);

/* Changes talkers, silence suppression and comfort noise. rate and frame_ms
 * must be unchanged (-EINVAL otherwise). */
int mix_room_update(struct mix_room *r, const struct mix_room_settings *s);

/* Current settings as last set by the loop thread. */
const struct mix_room_settings *mix_room_settings(const struct mix_room *r);

/* Removes the room and all its legs. Events follow: STOPPED_TALKING for any
 * talker, LEG_RELEASED for each leg, then ROOM_RELEASED. No function may be
 * called on the room or its legs after this. */
int mix_room_destroy(struct mix_room *r);

/* ---- legs (Thread: loop) ---- */

void mix_leg_config_default(struct mix_leg_config *c);

/* Creates a leg (decoder, resamplers, rings) and adds it to @r.
 * Returns 0, -EINVAL or -ENOMEM. */
int mix_leg_new(struct mix_room *r, const struct mix_leg_config *c,
                struct mix_leg **out);

/* Removes the leg; LEG_RELEASED follows (after STOPPED_TALKING if it was
 * talking). No function may be called on the leg after this. */
int mix_leg_destroy(struct mix_leg *l);

int mix_leg_set_muted(struct mix_leg *l, bool muted);       /* others don't hear it */
int mix_leg_set_deaf(struct mix_leg *l, bool deaf);         /* it hears nothing */
int mix_leg_set_suspended(struct mix_leg *l, bool suspended); /* no decode/encode */
int mix_leg_set_gain(struct mix_leg *l, float db);          /* what others hear */
/* Listener @l stops (on = true) or resumes hearing @speaker. -ENOSPC when
 * MIX_MAX_EXCLUDE speakers are already excluded. */
int mix_leg_exclude(struct mix_leg *l, const struct mix_leg *speaker, bool on);

/* Network side: queues one received packet for the mixer. Returns 0,
 * -EMSGSIZE, or -ENOSPC when the input ring is full (counted). */
int mix_leg_push(struct mix_leg *l, const struct mix_in_meta *m,
                 const void *payload, uint32_t len);

/* Network side: takes the next packet to send. Returns its length (0 for
 * a MIX_OUT_LOST record), or -EAGAIN when none is queued. @buf should hold
 * MIX_MAX_PACKET bytes. */
int mix_leg_pop(struct mix_leg *l, struct mix_out_meta *m, void *buf,
                uint32_t cap);

uint32_t mix_leg_id(const struct mix_leg *l);
void *mix_leg_user(const struct mix_leg *l);
uint32_t mix_room_id(const struct mix_room *r);

/* Thread: any. */
void mix_leg_stats(const struct mix_leg *l, struct mix_leg_stats *out);

#endif /* MIX_ENGINE_H */
