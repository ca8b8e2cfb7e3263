/*
 * mix_internal.h: private structures of the mixing engine, shared by
 * mix_engine.c (lifecycle, workers, events), mix_control.c (loop-side
 * construction of rooms, legs and encoder groups, commands) and mix_cycle.c
 * (the real-time cycle).
 *
 * Every field says which thread owns it:
 *   [imm]  set on the loop thread before the object is handed to rt, then
 *          read-only for everyone;
 *   [loop] loop thread only (the "shadow" state that lets the loop decide
 *          without asking rt);
 *   [rt]   the worker that owns the room, only;
 *   [atom] relaxed atomic, one writer (named), readable anywhere.
 */
#ifndef MIX_INTERNAL_H
#define MIX_INTERNAL_H

#include <opus/opus.h>
#include <pthread.h>
#include <speex/speex_resampler.h>
#include <stdatomic.h>

#include "mix_engine.h"
#include "mix_jitter.h"
#include "mix_ops.h"
#include "mix_ring.h"
#include "mix_talk.h"

enum {
    MIX_FIFO = 6144,              /* room-rate samples a leg may buffer */
    MIX_MAX_PKT_DUR_48K = 2880,   /* longest packet accepted: 60 ms */
    MIX_POOL_EXTRA = 0,           /* spare talker encoders beyond K: none
                                     needed, slots are released before
                                     they are taken (mix_cycle.c) */
    MIX_CMD_RING = 1 << 18,
    MIX_EV_RING = 1 << 18,
    MIX_DEFAULT_RING = 8192,
    MIX_KEEPALIVE_EVERY_MS = 2500,/* < MIX_KEEPALIVE_MS, margin for jitter */
    MIX_PULL_MAX = 24,            /* bound on jitter-buffer pulls per frame */
};

/* Single-writer relaxed counters: a plain load and store, no lock prefix. */
static inline void cnt_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void cnt_set(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t cnt_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* An encoder slot for a listener that needs its own mix (a talker, who must
 * not hear itself, or a listener with exclusions). */
struct mix_enc_slot {
    OpusEncoder *enc;            /* [imm] NULL for G.711 groups */
    SpeexResamplerState *down;   /* [imm] room -> group rate, or NULL */
    struct mix_limiter lim;      /* [rt] */
    struct mix_leg *owner;       /* [rt] leg using it this frame, or NULL */
};

/* One encoder configuration in a room: every listener with the same codec,
 * rate and bitrate that hears the common mix gets the bytes of one encode. */
struct mix_group {
    enum mix_codec codec;        /* [imm] */
    uint32_t rate;               /* [imm] encoder input rate */
    uint32_t bitrate;            /* [imm] */
    int complexity;              /* [imm] */
    uint32_t frame;              /* [imm] samples per frame at rate */
    uint32_t ts_step;            /* [imm] RTP ticks per frame */
    uint32_t enc_size;           /* [imm] bytes of an OpusEncoder */
    OpusEncoder *shared;         /* [imm] the common-mix encoder */
    SpeexResamplerState *down;   /* [imm] room -> rate for the shared mix */
    uint8_t silence[MIX_MAX_PACKET]; /* [imm] one frame of encoded digital
                                    silence: replayed, it decodes to silence
                                    (after one transition frame), so deaf
                                    legs and lone talkers cost no encode, and
                                    it is the keep-alive */
    uint16_t silence_len;        /* [imm] */
    struct mix_enc_slot pool[MIX_MAX_K + MIX_POOL_EXTRA]; /* [imm] up to
                                    pool_loop; rt reads up to pool_rt */
    uint32_t pool_loop;          /* [loop] slots built */
    uint32_t pool_rt;            /* [rt] slots usable */
    uint32_t refs;               /* [loop] legs using this group */
    bool dying;                  /* [loop] removal posted */
    uint32_t slot;               /* [imm] index in the room's group table */
    struct mix_group *rt_next_free; /* [rt] release queue link */

    /* [rt] per-frame state */
    struct mix_limiter lim;      /* limiter of the shared mix */
    bool shared_done;            /* shared packet built this frame */
    bool shared_silent;          /* this frame's shared mix has no talker */
    bool shared_skipped;         /* last frame's shared encode was skipped */
    int shared_len;              /* bytes, or < 0 when encoding failed */
    uint8_t shared_pkt[MIX_MAX_PACKET];
    uint8_t shared_level;
};

/* Atomic counters of a leg: written by the named thread, read anywhere. */
struct mix_leg_counters {
    _Atomic uint64_t packets_in, in_dropped, bytes_in, invalid_loop; /* loop */
    _Atomic uint64_t packets_out, out_dropped, bytes_out;            /* rt */
    _Atomic uint64_t late, lost, duplicate, concealed, fec_recovered;/* rt */
    _Atomic uint64_t dropped_delay, resync, invalid, decodes, encodes_own;
    _Atomic uint64_t overflow, forwarded;
    _Atomic uint64_t jb_depth_ms, jb_target_ms, level, talking, mixed;
};

struct mix_leg {
    uint32_t id;                 /* [imm] */
    void *user;                  /* [imm] */
    struct mix_room *room;       /* [imm] */
    struct mix_group *group;     /* [imm] */
    enum mix_codec codec;        /* [imm] */
    uint32_t rate;               /* [imm] decoder rate */
    uint32_t clock;              /* [imm] RTP clock: 48000 or 8000 */
    uint32_t frame_ts;           /* [imm] RTP ticks per room frame */
    OpusDecoder *dec;            /* [imm] NULL for G.711 */
    SpeexResamplerState *up;     /* [imm] leg rate -> room rate, or NULL */
    uint8_t *in_buf, *out_buf;   /* [imm] ring storage */
    struct mix_ring in;          /* loop produces, rt consumes */
    struct mix_ring out;         /* rt produces, loop consumes */

    /* [loop] shadow of the controls, and links of the loop's list */
    bool l_muted, l_deaf, l_suspended;
    float l_gain_db;
    uint32_t l_excl[MIX_MAX_EXCLUDE];
    uint32_t l_nexcl;
    struct mix_enc_slot *l_own;  /* own encoder, built on first exclusion */
    bool l_dying;
    struct mix_leg *l_next, *l_prev;

    /* [rt] */
    struct mix_leg *next, *prev; /* room's list */
    struct mix_leg *rt_next_free;/* release queue link */
    bool muted, deaf, suspended;
    int32_t gain;                /* Q16 */
    uint32_t excl[MIX_MAX_EXCLUDE];
    uint32_t nexcl;
    struct mix_enc_slot *own;    /* for exclusions, or NULL */
    struct mix_enc_slot *cur;    /* slot used for this frame's custom mix */
    bool was_custom;             /* heard a custom mix last frame */
    struct mix_jb jb;
    struct mix_talk talk;
    bool dec_stale;              /* decoder missed packets: reset + fade */
    bool selected;               /* among the K loudest this frame */
    bool has_pcm;                /* pcm[] holds this frame's audio */
    const struct mix_jb_packet *deferred; /* undecoded packet of this frame */
    const struct mix_jb_packet *fwd; /* this frame is exactly this packet
                                    (forwardable to a listener who hears
                                    only this leg), or NULL */
    struct mix_leg *fwd_from;    /* being forwarded this talker's packets
                                    (kept across frames), or NULL */
    bool heard_none;             /* heard nobody in the last frame */
    uint8_t frame_level;         /* RFC 6464 level of this frame */
    uint8_t frame_mode;          /* what it hears this frame (mix_cycle.c) */
    bool out_silent;             /* last frame was suppressed */
    uint64_t last_out_frame;     /* room frame of the last packet sent */
    uint32_t fifo_len;
    int16_t fifo[MIX_FIFO];      /* decoded audio at room rate */
    struct mix_leg_counters c;
};

struct mix_room {
    uint32_t id;                 /* [imm] */
    void *user;                  /* [imm] */
    struct mix_engine *e;        /* [imm] */
    struct mix_worker *w;        /* [imm] */
    uint32_t rate;               /* [imm] */
    uint32_t frame_ms;           /* [imm] */
    uint32_t frame;              /* [imm] samples per frame at rate */
    uint32_t every;              /* [imm] cycles per frame */
    uint32_t phase;              /* [imm] cycle offset of its frames */
    bool naive;                  /* [imm] benchmark baseline mode */
    bool forward;                /* [rt] forward_single_talker */

    /* [loop] */
    struct mix_room_settings l_set;
    struct mix_group *l_groups[MIX_MAX_GROUPS];
    struct mix_leg *l_legs;
    struct mix_room *l_next, *l_prev;
    bool l_dying;

    /* [rt] */
    struct mix_room *next, *prev;
    struct mix_room *rt_next_free;
    struct mix_leg *legs;
    struct mix_group *groups[MIX_MAX_GROUPS];
    uint32_t nlegs;
    uint32_t k;
    bool suppress, cn;
    int cn_dbov;
    uint32_t cn_seed;
    uint64_t frames;             /* frames mixed so far: the RTP clock */
    struct mix_leg *sel[MIX_MAX_K];
    uint32_t nsel;
};

/* A command that did not fit in the ring, waiting on the loop side. */
struct mix_cmd_node {
    struct mix_cmd_node *next;
    /* the command follows (struct mix_cmd, defined below) */
};

struct mix_worker {
    struct mix_engine *e;        /* [imm] */
    unsigned idx;                /* [imm] */
    pthread_t thread;            /* [loop] */
    bool started;                /* [loop] */
    _Atomic bool running;        /* loop writes, rt reads */
    struct mix_ring cmd;         /* loop -> rt */
    struct mix_ring ev;          /* rt -> loop */
    uint8_t *cmd_buf, *ev_buf;   /* [imm] */
    /* [loop] commands waiting for room in the ring, oldest first. While
     * any wait, every new command queues behind them, so rt sees commands
     * in the order they were posted and none is ever refused. */
    struct mix_cmd_node *pend_head, *pend_tail;

    /* [rt] */
    struct mix_room *rooms;
    uint64_t cycle;
    uint64_t now_ns;             /* time of the cycle being run */
    /* release queues: objects unlinked, waiting for room in the event ring */
    struct mix_leg *free_legs, **free_legs_tail;
    struct mix_group *free_groups, **free_groups_tail;
    struct mix_room *free_rooms, **free_rooms_tail;
    bool produced;               /* cycle pushed output or events */
    uint64_t cycle_encodes;

    /* [rt] scratch: fixed arrays, so the cycle never allocates */
    int32_t acc[MIX_MAX_FRAME_48K];
    int32_t mix[MIX_MAX_FRAME_48K];
    int16_t pcm16[MIX_MAX_FRAME_48K];
    int16_t rs16[MIX_MAX_FRAME_48K];
    int16_t dec16[MIX_MAX_PKT_DUR_48K];
    uint8_t pkt[MIX_MAX_PACKET];

    /* [atom] written by rt (or by loop in manual mode) */
    _Atomic uint64_t cycles, busy_cycles, missed, encodes, decodes;
    _Atomic uint64_t last_encodes, max_cycle_ns, rooms_n, legs_n, ev_full;
    _Atomic uint64_t busy_ns;
    _Atomic uint64_t hist[MIX_TICK_BUCKETS];
};

struct mix_engine {
    struct mix_engine_config cfg;     /* [imm] */
    struct mix_worker *w[MIX_MAX_WORKERS]; /* [imm] */
    unsigned nworkers;                /* [imm] */
    _Atomic bool wake_pending;        /* rt sets, loop clears in poll */
    bool running;                     /* [loop] */
    uint64_t vclock_ns;               /* [loop] manual-mode clock */
    unsigned next_worker;             /* [loop] round robin for rooms */
    uint32_t phase_load[MIX_MAX_WORKERS][4]; /* [loop] rooms mixed on each
                                         cycle mod 4, per worker */
    struct mix_room *l_rooms;         /* [loop] all rooms not yet released */
    _Atomic uint64_t cmd_full;        /* [atom] loop */
};

/* ---- commands (loop -> rt) ---- */

enum mix_cmd_type {
    MIX_CMD_ROOM_ADD = 1,
    MIX_CMD_ROOM_REMOVE,
    MIX_CMD_ROOM_SET,
    MIX_CMD_GROUP_ADD,
    MIX_CMD_GROUP_REMOVE,
    MIX_CMD_POOL_GROW,
    MIX_CMD_LEG_ADD,
    MIX_CMD_LEG_REMOVE,
    MIX_CMD_LEG_CONTROLS,
    MIX_CMD_LEG_EXCLUDE,
};

struct mix_cmd {
    enum mix_cmd_type type;
    struct mix_room *room;
    struct mix_leg *leg;
    struct mix_group *group;
    union {
        struct { uint32_t k; bool suppress, cn, forward; int cn_dbov; } set;
        struct { bool muted, deaf, suspended; int32_t gain; } ctl;
        struct {
            uint32_t ids[MIX_MAX_EXCLUDE];
            uint32_t n;
            struct mix_enc_slot *own;
        } excl;
        uint32_t pool_n;
    } u;
};

/* ---- events (rt -> loop) ---- */

enum mix_rec_kind {
    MIX_REC_EVENT = 1,  /* deliver ev to the user */
    MIX_REC_FREE_LEG,   /* deliver ev (LEG_RELEASED), then free obj */
    MIX_REC_FREE_ROOM,  /* deliver ev (ROOM_RELEASED), then free obj */
    MIX_REC_FREE_GROUP, /* free obj, nothing to deliver */
};

struct mix_rec {
    enum mix_rec_kind kind;
    void *obj;
    struct mix_event ev;
};

/* mix_engine.c */
int mix__post(struct mix_worker *w, const struct mix_cmd *cmd);
void mix__flush_pending(struct mix_worker *w);
bool mix__emit(struct mix_worker *w, const struct mix_rec *rec);
void mix__emit_event(struct mix_worker *w, enum mix_event_type type,
                     const struct mix_room *r, const struct mix_leg *l,
                     int64_t value);

/* mix_control.c: loop-side constructors and destructors */
void mix__leg_free(struct mix_leg *l);
void mix__group_free(struct mix_group *g);
void mix__room_free(struct mix_room *r);

/* mix_cycle.c: rt */
void mix__apply(struct mix_worker *w, const struct mix_cmd *cmd);
bool mix__room_due(const struct mix_worker *w, const struct mix_room *r);
void mix__room_cycle(struct mix_worker *w, struct mix_room *r);
void mix__flush_releases(struct mix_worker *w);

#endif /* MIX_INTERNAL_H */
