/*
 * fuzz_rtcp.c: libFuzzer target for the bridge's compound RTCP parser
 * (brg_rtcp_parse in brg_rtp.h). The whole input is one datagram.
 *
 * Beyond "no crash, no sanitizer report" it checks invariants and abort()s
 * when one breaks: counts within their arrays, the CNAME NUL-terminated,
 * and an accepted compound's first report block and CNAME surviving a
 * brg_rtcp_build_rr -> brg_rtcp_parse round trip.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; with gcc,
 * tests/fuzz/fuzz_replay.c replays the seeds in tests/fuzz/corpus/rtcp.
 */
#include "brg_rtp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rebuilds an RR from what @in found and checks it parses back. */
static void check_round_trip(const struct brg_rtcp_info *in)
{
    const struct brg_rtcp_report_block *b = in->n_blocks ? &in->blocks[0] : NULL;
    struct brg_rtcp_info out;
    uint8_t buf[512];
    int n;

    if (!in->has_cname || in->cname[0] == '\0')
        return;
    n = brg_rtcp_build_rr(buf, sizeof(buf), in->rr_ssrc, b, in->cname);
    if (n < 0 || brg_rtcp_parse(&out, buf, (size_t)n) != BRG_RTCP_OK)
        abort();
    if (strcmp(out.cname, in->cname) != 0 || out.n_blocks != (b ? 1u : 0u))
        abort();
    if (b && (out.blocks[0].ssrc != b->ssrc ||
              out.blocks[0].cumulative_lost != b->cumulative_lost ||
              out.blocks[0].ext_highest_seq != b->ext_highest_seq ||
              out.blocks[0].dlsr != b->dlsr))
        abort();
}

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct brg_rtcp_info info;
    enum brg_rtcp_result r = brg_rtcp_parse(&info, data, size);

    (void)brg_rtp_demux(data, size);
    if ((unsigned)r >= BRG_RTCP_RESULT_COUNT)
        abort();
    if (r != BRG_RTCP_OK)
        return 0;
    if (info.n_blocks > BRG_RTCP_MAX_BLOCKS || info.n_bye > BRG_RTCP_MAX_BYE ||
        info.packets == 0 || size % 4 != 0 || (!info.has_sr && !info.has_rr))
        abort();
    if (memchr(info.cname, '\0', sizeof(info.cname)) == NULL)
        abort();
    check_round_trip(&info);
    return 0;
}
