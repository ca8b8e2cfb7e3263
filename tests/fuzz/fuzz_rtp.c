/*
 * fuzz_rtp.c: libFuzzer target for the bridge's RTP code (brg_rtp.h):
 * brg_rtp_parse, brg_rtp_demux, brg_rtp_build and the receiver statistics.
 *
 * Input: the first byte selects the mode.
 *  - top bit clear: the low 7 bits (modulo 16, 0 = lookup off) are the
 *    RFC 6464 extension id, the rest is one datagram. Beyond "no crash, no
 *    sanitizer report" it checks that an accepted packet's payload lies
 *    inside the input and that rebuilding it (header, level, payload) and
 *    parsing again gives the same fields.
 *  - top bit set: the rest is a stream of 10-byte records (seq 16, ts 32,
 *    arrival 32, big-endian) fed to brg_rtp_stats_update, with a report
 *    every 8 records (UBSan watches the arithmetic).
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; with gcc,
 * tests/fuzz/fuzz_replay.c replays the seeds in tests/fuzz/corpus/rtp.
 */
#include "brg_rtp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rebuilds @p and checks the copy parses to the same header and payload. */
static void check_round_trip(const struct brg_rtp_packet *p, uint8_t id)
{
    static uint8_t out[70000];
    struct brg_rtp_header h = {
        .pt = p->pt, .marker = p->marker, .seq = p->seq, .ts = p->ts,
        .ssrc = p->ssrc, .level_present = p->level_present && id <= 14,
        .vad = p->vad, .level = p->level, .level_ext_id = id,
    };
    struct brg_rtp_packet q;
    int n = brg_rtp_build(out, sizeof(out), &h, p->payload, p->payload_len);

    if (n < 0)
        abort();
    if (brg_rtp_parse(&q, out, (size_t)n, id) != BRG_RTP_OK)
        abort();
    if (q.pt != p->pt || q.marker != p->marker || q.seq != p->seq ||
        q.ts != p->ts || q.ssrc != p->ssrc ||
        q.payload_len != p->payload_len ||
        memcmp(q.payload, p->payload, p->payload_len) != 0)
        abort();
    if (h.level_present && (!q.level_present || q.vad != p->vad ||
                            q.level != p->level))
        abort();
}

/* Mode 1: one datagram. */
static void fuzz_packet(const uint8_t *data, size_t size, uint8_t id)
{
    struct brg_rtp_packet p;
    enum brg_rtp_result r = brg_rtp_parse(&p, data, size, id);

    (void)brg_rtp_demux(data, size);
    if ((unsigned)r >= BRG_RTP_RESULT_COUNT)
        abort();
    if (r != BRG_RTP_OK)
        return;
    if (p.payload < data || p.payload + p.payload_len + p.pad_len != data + size)
        abort();
    if (p.csrc_count > BRG_RTP_MAX_CSRC || p.level > BRG_RTP_LEVEL_MAX)
        abort();
    if (p.ext && (p.ext < data || p.ext + p.ext_len > p.payload))
        abort();
    check_round_trip(&p, id);
}

/* Mode 2: a packet stream through the receiver statistics. */
static void fuzz_stats(const uint8_t *data, size_t size)
{
    struct brg_rtp_stats s;
    struct brg_rtcp_report_block rb;
    uint64_t now = 0;

    brg_rtp_stats_init(&s, 1);
    for (size_t i = 0; i + 10 <= size; i += 10) {
        const uint8_t *d = data + i;
        uint16_t seq = (uint16_t)(d[0] << 8 | d[1]);
        uint32_t ts = (uint32_t)d[2] << 24 | (uint32_t)d[3] << 16 |
                      (uint32_t)d[4] << 8 | d[5];
        uint32_t arr = (uint32_t)d[6] << 24 | (uint32_t)d[7] << 16 |
                       (uint32_t)d[8] << 8 | d[9];

        brg_rtp_stats_update(&s, seq, ts, arr);
        now += arr;
        if (i % 80 == 0)
            brg_rtp_stats_on_sr(&s, (uint64_t)ts << 32 | arr, now);
        if (i % 80 == 70)
            brg_rtp_stats_report(&s, &rb, now + seq);
    }
    brg_rtp_stats_report(&s, &rb, now);
}

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 0x80)
        fuzz_stats(data + 1, size - 1);
    else
        fuzz_packet(data + 1, size - 1, (uint8_t)((data[0] & 0x7f) % 16));
    return 0;
}
