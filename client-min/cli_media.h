/*
 * cli_media.h: chorus-client's audio path, independent of the transport.
 *
 * Sending: a source (tone, WAV file or silence) is cut into 20 ms frames at
 * 48 kHz, encoded with Opus (in-band FEC on) and wrapped in RTP with an
 * RFC 6464 client-to-mixer audio level, so the bridge can rank talkers
 * without decoding.
 * Receiving: RTP is parsed, reordered and de-jittered by the mixer's own
 * jitter buffer (mix_jitter.h), decoded (FEC and PLC included) once per
 * 20 ms playout tick, and written to a WAV file.
 *
 * Thread: the client's loop.
 */
#ifndef CLI_MEDIA_H
#define CLI_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli_wav.h"

enum {
    CLI_RATE = 48000,
    CLI_FRAME_MS = 20,
    CLI_FRAME = CLI_RATE / 1000 * CLI_FRAME_MS,
    CLI_PT_OPUS = 111,
};

enum cli_source_kind { CLI_SRC_SILENCE = 0, CLI_SRC_TONE, CLI_SRC_WAV };

struct cli_media_config {
    enum cli_source_kind source;
    double tone_hz;          /* CLI_SRC_TONE */
    double tone_dbfs;        /* its level, e.g. -12 */
    const char *wav_in;      /* CLI_SRC_WAV; played once, then silence */
    const char *wav_out;     /* what we hear, or NULL */
    uint32_t bitrate;        /* Opus bitrate, bps */
};

struct cli_stats {
    uint64_t sent, sent_bytes;
    uint64_t received, received_bytes, invalid;
    uint64_t lost, late, concealed, fec, duplicate;
    double jitter_ms;        /* RFC 3550 interarrival jitter estimate */
    uint64_t played_frames;
    uint64_t gaps;           /* frames played as silence after reception
                                started: the bridge sent nothing in time
                                (underrun) or nothing at all (DTX) */
};

struct cli_media;

/* Returns 0 or a negative errno with a message in @err. */
int cli_media_new(struct cli_media **out, const struct cli_media_config *cfg,
                  char *err, size_t errlen);
void cli_media_free(struct cli_media *m);

/* Builds the next RTP packet to send (one 20 ms frame). Returns its length,
 * or a negative errno. */
int cli_media_next_packet(struct cli_media *m, uint8_t *buf, size_t cap);

/* Takes one received RTP packet at monotonic time @now_ns. Returns 0 or a
 * negative errno when it was rejected (counted). */
int cli_media_receive(struct cli_media *m, const uint8_t *pkt, size_t len,
                      uint64_t now_ns);

/* One 20 ms playout tick at @now_ns: decodes a frame and appends it to the
 * output file (once reception has started). */
void cli_media_play(struct cli_media *m, uint64_t now_ns);

/* Flushes and closes the output file; fills @st. Returns 0 or -EIO. */
int cli_media_finish(struct cli_media *m, struct cli_stats *st);

#endif /* CLI_MEDIA_H */
