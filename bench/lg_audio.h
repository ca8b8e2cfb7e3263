/*
 * lg_audio.h: chorus-loadgen's audio. Everything that costs CPU is done
 * once, before the run, so the load generator spends its time on packets
 * and not on codecs:
 *
 *  - Talker j sends a loop of LG_PERIOD_FRAMES pre-encoded 20 ms Opus
 *    frames (48 kHz mono, VOIP, in-band FEC, complexity 10: what
 *    chorus-client sends): a quiet tone of its own (LG_TONE_DBFS) and, once
 *    per loop (1 s), one frame replaced by a louder "marker" burst at a
 *    frequency of its own (LG_MARKER_DBFS), at a phase of its own, so the
 *    markers of different talkers neither overlap nor alias.
 *  - Silent legs send one pre-encoded frame of digital silence, again and
 *    again, with RFC 6464 level 127 (continuous sending, no DTX).
 *  - A listener (a few legs only) decodes the mix it receives and finds
 *    marker onsets with Goertzel filters at the talkers' marker
 *    frequencies, to a few milliseconds (2.5 ms sub-blocks, looking back
 *    into the previous frame).
 *
 * The loop is pre-encoded twice and the second pass kept, so the encoder
 * state at the loop point is what it would be in a continuous stream.
 *
 * Thread: one (the loop). Objects are caller-allocated.
 */
#ifndef LG_AUDIO_H
#define LG_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    LG_RATE = 48000,
    LG_FRAME_MS = 20,
    LG_FRAME = LG_RATE / 1000 * LG_FRAME_MS,      /* 960 samples */
    LG_PERIOD_FRAMES = 50,                        /* 1 s loop, 1 marker */
    LG_MAX_TALKERS = 16,                          /* the room's top-K limit */
    LG_MAX_PAYLOAD = 400,                         /* bytes per Opus frame */
    LG_SUBBLOCK = 120,                            /* 2.5 ms onset resolution */
    LG_PT_OPUS = 111,
    LG_LEVEL_SILENT = 127,
};

#define LG_TONE_DBFS (-24.0)
#define LG_MARKER_DBFS (-12.0)

/* One pre-encoded frame. */
struct lg_frame {
    uint8_t data[LG_MAX_PAYLOAD];
    uint16_t len;
    uint8_t level;               /* RFC 6464 -dBov */
    bool marker;                 /* this frame carries the talker's marker */
};

/* The pre-encoded material of a run. Read-only once built. */
struct lg_audio {
    unsigned talkers;                                  /* 0..LG_MAX_TALKERS */
    struct lg_frame talk[LG_MAX_TALKERS][LG_PERIOD_FRAMES];
    struct lg_frame silence;
    double marker_hz[LG_MAX_TALKERS];
    unsigned marker_frame[LG_MAX_TALKERS];             /* index in the loop */
};

/* Builds the frames of @talkers talkers at @bitrate bps, Opus complexity
 * @complexity. Returns 0, -EINVAL or -ENOMEM (no codec). */
int lg_audio_init(struct lg_audio *a, unsigned talkers, uint32_t bitrate, int complexity);

/* The frame number @n of talker @talker, or the silent frame for a
 * negative @talker. */
const struct lg_frame *lg_audio_frame(const struct lg_audio *a, int talker, uint32_t n);

/* Called for every marker onset a listener finds: talker index and the
 * monotonic time (ns) at which the burst begins in the received stream. */
typedef void (*lg_marker_cb)(unsigned talker, uint64_t onset_ns, void *data);

/* A decoding listener. Caller-allocated; private fields. */
struct lg_listener {
    const struct lg_audio *a;
    void *dec;                                /* OpusDecoder */
    bool started;
    uint16_t next_seq;
    int16_t prev[LG_FRAME];                   /* previous decoded frame */
    uint64_t prev_rx_ns;
    bool have_prev;
    uint64_t holdoff_until[LG_MAX_TALKERS];   /* one onset per burst */
    uint64_t decoded;                         /* read-only: frames */
    uint64_t errors;                          /* read-only: undecodable */
};

/* Returns 0 or -ENOMEM. */
int lg_listener_init(struct lg_listener *l, const struct lg_audio *a);
void lg_listener_close(struct lg_listener *l);

/* Decodes one received packet (sequence @seq, Opus @payload) that arrived
 * at @rx_ns and reports marker onsets through @cb. */
void lg_listener_feed(struct lg_listener *l, uint16_t seq, const uint8_t *payload,
                      size_t len, uint64_t rx_ns, lg_marker_cb cb, void *data);

#endif /* LG_AUDIO_H */
