/*
 * cli_wav.h: minimal RIFF/WAVE reading and writing for chorus-client:
 * 16-bit PCM only, any rate, mono or stereo on input (stereo is averaged),
 * mono on output. Every chunk length is bounds-checked.
 *
 * Thread: any (no shared state).
 */
#ifndef CLI_WAV_H
#define CLI_WAV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Reads a whole WAV file into a malloc'd mono buffer. Returns 0, or a
 * negative errno with a message in @err (-EINVAL: not a 16-bit PCM WAV). */
int cli_wav_read(const char *path, int16_t **pcm, size_t *n, uint32_t *rate,
                 char *err, size_t errlen);

/* A WAV file being written: the header is patched with the final sizes by
 * cli_wav_close. */
struct cli_wav_out {
    FILE *f;
    uint32_t rate;
    uint64_t samples;
};

int cli_wav_open(struct cli_wav_out *w, const char *path, uint32_t rate);
int cli_wav_append(struct cli_wav_out *w, const int16_t *pcm, size_t n);
int cli_wav_close(struct cli_wav_out *w);

#endif /* CLI_WAV_H */
