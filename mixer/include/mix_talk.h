/*
 * mix_talk.h: talk detection per leg. Energy with hysteresis and hang-over:
 * a leg starts talking after its level has stayed above the start threshold
 * for the onset time, and stops after it has stayed below the (lower) stop
 * threshold for the hang-over time. Levels are RFC 6464 values (0 = 0 dBov,
 * 127 = silence), taken from the packet's client-to-mixer extension when
 * the leg sends one, else measured on the decoded audio.
 *
 * Thread: the owner (rt in the engine). Pure state machine, rt safe.
 */
#ifndef MIX_TALK_H
#define MIX_TALK_H

#include <stdbool.h>
#include <stdint.h>

struct mix_talk_config {
    uint8_t start_level;   /* talking when level <= this (e.g. 45: -45 dBov) */
    uint8_t stop_level;    /* quiet when level > this (e.g. 52) */
    uint32_t onset_ms;     /* time above start before "talking" */
    uint32_t hangover_ms;  /* time below stop before "stopped talking" */
};

enum mix_talk_event {
    MIX_TALK_NONE = 0,
    MIX_TALK_STARTED,
    MIX_TALK_STOPPED,
};

struct mix_talk {
    bool talking;       /* current state (read-only for callers) */
    uint32_t above_ms;  /* time continuously above start */
    uint32_t below_ms;  /* time continuously below stop */
    float smooth_db;    /* smoothed loudness in dB (higher = louder), for
                           ranking talkers */
};

/* Defaults used by the engine: start -45 dBov, stop -52 dBov, onset 20 ms,
 * hang-over 500 ms. */
void mix_talk_config_default(struct mix_talk_config *cfg);

void mix_talk_init(struct mix_talk *t);

/* Feeds the level of one frame of @frame_ms. Returns the transition, if any. */
enum mix_talk_event mix_talk_update(struct mix_talk *t,
                                    const struct mix_talk_config *cfg,
                                    uint8_t level, uint32_t frame_ms);

#endif /* MIX_TALK_H */
