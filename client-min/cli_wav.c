/*
 * cli_wav.c: see cli_wav.h.
 */
#include "cli_wav.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

enum { WAV_MAX_BYTES = 512 * 1024 * 1024 };

int cli_wav_read(const char *path, int16_t **pcm, size_t *n, uint32_t *rate,
                 char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    uint8_t hdr[12], ck[8], fmt[16];
    uint16_t channels = 0, bits = 0, format = 0;
    uint32_t data_len = 0;
    bool have_fmt = false;
    int16_t *raw = NULL, *out = NULL;
    size_t frames;
    int rc = -EINVAL;

    *pcm = NULL;
    *n = 0;
    if (!f) {
        rc = -errno; /* before snprintf, which may change errno */
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) || memcmp(hdr + 8, "WAVE", 4)) {
        snprintf(err, errlen, "%s: not a RIFF/WAVE file", path);
        goto out;
    }
    /* Walk the chunks up to "data"; at most 64 chunks. */
    for (int i = 0; i < 64; i++) {
        uint32_t len;

        if (fread(ck, 1, 8, f) != 8) {
            snprintf(err, errlen, "%s: no data chunk", path);
            goto out;
        }
        len = le32(ck + 4);
        if (!memcmp(ck, "fmt ", 4)) {
            if (len < 16 || fread(fmt, 1, 16, f) != 16) {
                snprintf(err, errlen, "%s: short fmt chunk", path);
                goto out;
            }
            format = le16(fmt);
            channels = le16(fmt + 2);
            *rate = le32(fmt + 4);
            bits = le16(fmt + 14);
            have_fmt = true;
            if (fseek(f, (long)(len - 16 + (len & 1)), SEEK_CUR) != 0)
                goto out_seek;
            continue;
        }
        if (!memcmp(ck, "data", 4)) {
            data_len = len;
            break;
        }
        if (fseek(f, (long)len + (len & 1), SEEK_CUR) != 0)
            goto out_seek;
    }
    if (!have_fmt || (format != 1 && format != 0xFFFE) || bits != 16 ||
        channels < 1 || channels > 2 || *rate < 8000 || *rate > 192000) {
        snprintf(err, errlen, "%s: only 16-bit PCM, mono or stereo, 8-192 kHz is supported", path);
        goto out;
    }
    if (data_len == 0 || data_len > WAV_MAX_BYTES) {
        snprintf(err, errlen, "%s: empty or too large data chunk", path);
        goto out;
    }
    raw = malloc(data_len);
    if (!raw) {
        rc = -ENOMEM;
        goto out_nomem;
    }
    data_len = (uint32_t)fread(raw, 1, data_len, f); /* a truncated file plays what it has */
    frames = data_len / (2u * channels);
    out = malloc(frames * sizeof(int16_t) + 1);
    if (!out) {
        rc = -ENOMEM;
        goto out_nomem;
    }
    for (size_t k = 0; k < frames; k++) {
        const uint8_t *p = (const uint8_t *)raw + k * 2u * channels;
        int32_t s = (int16_t)le16(p);
        if (channels == 2)
            s = (s + (int16_t)le16(p + 2)) / 2;
        out[k] = (int16_t)s;
    }
    *pcm = out;
    *n = frames;
    out = NULL;
    rc = 0;
    goto out;

    /* Every failure fills @err: the caller prints it as is. */
out_seek:
    snprintf(err, errlen, "%s: cannot skip a chunk (not a seekable file?)", path);
    goto out;
out_nomem:
    snprintf(err, errlen, "%s: out of memory", path);
out:
    free(raw);
    free(out);
    fclose(f);
    return rc;
}

static int write_header(struct cli_wav_out *w)
{
    uint8_t h[44];
    uint64_t bytes = w->samples * 2;

    if (bytes > 0xFFFFFFFFu - 36)
        bytes = 0xFFFFFFFFu - 36;
    memcpy(h, "RIFF", 4);
    put32(h + 4, (uint32_t)(36 + bytes));
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, 1);
    put16(h + 22, 1);
    put32(h + 24, w->rate);
    put32(h + 28, w->rate * 2);
    put16(h + 32, 2);
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, (uint32_t)bytes);
    if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof(h), w->f) != sizeof(h))
        return -EIO;
    return fseek(w->f, 0, SEEK_END) == 0 ? 0 : -EIO;
}

int cli_wav_open(struct cli_wav_out *w, const char *path, uint32_t rate)
{
    w->f = fopen(path, "wb");
    w->rate = rate;
    w->samples = 0;
    if (!w->f)
        return -errno;
    return write_header(w);
}

int cli_wav_append(struct cli_wav_out *w, const int16_t *pcm, size_t n)
{
    uint8_t buf[2 * 1024];

    while (n > 0) {
        size_t k = n > sizeof(buf) / 2 ? sizeof(buf) / 2 : n;
        for (size_t i = 0; i < k; i++)
            put16(buf + 2 * i, (uint16_t)pcm[i]);
        if (fwrite(buf, 2, k, w->f) != k)
            return -EIO;
        w->samples += k;
        pcm += k;
        n -= k;
    }
    return 0;
}

int cli_wav_close(struct cli_wav_out *w)
{
    int rc;

    if (!w->f)
        return 0;
    rc = write_header(w);
    if (fclose(w->f) != 0 && rc == 0)
        rc = -EIO;
    w->f = NULL;
    return rc;
}
