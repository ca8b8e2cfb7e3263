/*
 * brg_rtp_stats.c: receiver statistics of RFC 3550 appendix A.
 *
 *   A.1  sequence number validation: probation of MIN_SEQUENTIAL packets,
 *        cycle counting on wrap, restart after a large jump is confirmed
 *        by the next packet (bad_seq).
 *   A.3  cumulative loss, fraction lost per reporting interval, extended
 *        highest sequence number.
 *   A.8  interarrival jitter, integer form (jitter kept scaled by 16).
 *   LSR/DLSR (§6.4.1) from the last SR heard from the source.
 *
 * The code keeps the appendix's structure and names so it can be read side
 * by side with the RFC.
 */
#include "brg_rtp.h"

#include <string.h>

enum {
    /* Transit deltas are clamped so that the scaled estimate (which tends
     * to 16 * d) stays far from 2^32 even for absurd timestamps. */
    JITTER_D_MAX = 1 << 27,
};

/* Resets @s for a stream starting at @seq (A.1 init_seq). The transit is
 * forgotten too: after a restart the sender's timestamp base may differ. */
static void init_seq(struct brg_rtp_stats *s, uint16_t seq)
{
    s->base_seq = seq;
    s->max_seq = seq;
    s->bad_seq = BRG_RTP_SEQ_MOD + 1;   /* so seq == bad_seq is false */
    s->cycles = 0;
    s->received = 0;
    s->received_prior = 0;
    s->expected_prior = 0;
    s->have_transit = false;
}

/* A.1 update_seq. Returns BRG_RTP_SEQ_OK or _RESTART when the packet is
 * valid and counted, _PROBATION or _BAD when it is not. */
static enum brg_rtp_seq_result update_seq(struct brg_rtp_stats *s,
                                          uint16_t seq)
{
    uint16_t udelta = (uint16_t)(seq - s->max_seq);
    enum brg_rtp_seq_result res = BRG_RTP_SEQ_OK;

    if (s->probation) {
        /* packet is in sequence */
        if (seq == (uint16_t)(s->max_seq + 1)) {
            s->probation--;
            s->max_seq = seq;
            if (s->probation == 0) {
                init_seq(s, seq);
                s->received++;
                return BRG_RTP_SEQ_OK;
            }
        } else {
            s->probation = BRG_RTP_MIN_SEQUENTIAL - 1;
            s->max_seq = seq;
        }
        return BRG_RTP_SEQ_PROBATION;
    } else if (udelta < BRG_RTP_MAX_DROPOUT) {
        /* in order, with permissible gap */
        if (seq < s->max_seq)
            s->cycles += BRG_RTP_SEQ_MOD;   /* wrapped */
        s->max_seq = seq;
    } else if (udelta <= BRG_RTP_SEQ_MOD - BRG_RTP_MAX_MISORDER) {
        /* the sequence number made a very large jump */
        if (seq == s->bad_seq) {
            /* two sequential packets: assume the other side restarted
             * without telling us, so just re-sync */
            init_seq(s, seq);
            s->restarts++;
            res = BRG_RTP_SEQ_RESTART;
        } else {
            s->bad_seq = (uint32_t)(seq + 1) & (BRG_RTP_SEQ_MOD - 1);
            s->bad++;
            return BRG_RTP_SEQ_BAD;
        }
    } else {
        /* duplicate or reordered packet */
    }
    s->received++;
    return res;
}

/* A.8: J += (|D| - J) / 16, with J kept as 16 * J. Transit values are RTP
 * units modulo 2^32; their difference is read as a signed distance. */
static void update_jitter(struct brg_rtp_stats *s, uint32_t ts,
                          uint32_t arrival)
{
    uint32_t transit = arrival - ts;
    int64_t d;

    if (!s->have_transit) {
        s->have_transit = true;
        s->transit = transit;
        return;
    }
    d = (int32_t)(transit - s->transit);
    s->transit = transit;
    if (d < 0)
        d = -d;
    if (d > JITTER_D_MAX)
        d = JITTER_D_MAX;
    s->jitter_q4 += (uint32_t)d - ((s->jitter_q4 + 8) >> 4);
}

/* Resets @s for @ssrc; see brg_rtp.h. */
void brg_rtp_stats_init(struct brg_rtp_stats *s, uint32_t ssrc)
{
    memset(s, 0, sizeof(*s));
    s->ssrc = ssrc;
}

/* Accounts one packet; see brg_rtp.h. The first packet of a source starts
 * probation as A.1 prescribes (max_seq = seq - 1, so the packet itself is
 * the first "in sequence" one). */
enum brg_rtp_seq_result brg_rtp_stats_update(struct brg_rtp_stats *s,
                                             uint16_t seq, uint32_t ts,
                                             uint32_t arrival)
{
    enum brg_rtp_seq_result r;

    if (!s->started) {
        s->started = true;
        init_seq(s, seq);
        s->max_seq = (uint16_t)(seq - 1);
        s->probation = BRG_RTP_MIN_SEQUENTIAL;
    }
    r = update_seq(s, seq);
    if (r == BRG_RTP_SEQ_OK || r == BRG_RTP_SEQ_RESTART)
        update_jitter(s, ts, arrival);
    return r;
}

/* Remembers the SR's middle 32 NTP bits and when it came; see brg_rtp.h. */
void brg_rtp_stats_on_sr(struct brg_rtp_stats *s, uint64_t ntp,
                         uint64_t now_us)
{
    s->lsr = (uint32_t)(ntp >> 16);
    s->lsr_arrival_us = now_us;
}

/* Extended highest sequence number (A.3); see brg_rtp.h. */
uint32_t brg_rtp_stats_ext_max(const struct brg_rtp_stats *s)
{
    return s->cycles + s->max_seq;
}

/* Delay since the last SR in 1/65536 s, 0 when none was received. */
static uint32_t dlsr(const struct brg_rtp_stats *s, uint64_t now_us)
{
    uint64_t d;

    if (s->lsr == 0 || now_us < s->lsr_arrival_us)
        return 0;
    d = now_us - s->lsr_arrival_us;
    if (d > (UINT64_C(1) << 44))    /* > 200 days: keep the math small */
        return UINT32_MAX;
    d = (d << 16) / 1000000;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* Fills a report block (A.3) and starts a new interval; see brg_rtp.h. */
void brg_rtp_stats_report(struct brg_rtp_stats *s,
                          struct brg_rtcp_report_block *rb, uint64_t now_us)
{
    uint32_t extended_max, expected, expected_interval, received_interval;
    int64_t lost, lost_interval;

    memset(rb, 0, sizeof(*rb));
    rb->ssrc = s->ssrc;
    rb->lsr = s->lsr;
    rb->dlsr = dlsr(s, now_us);
    if (!s->started || s->probation)
        return;     /* source not valid yet: nothing to report on */

    extended_max = brg_rtp_stats_ext_max(s);
    expected = extended_max - s->base_seq + 1;
    lost = (int64_t)expected - s->received;
    if (lost > 0x7fffff)
        lost = 0x7fffff;
    if (lost < -0x800000)
        lost = -0x800000;

    expected_interval = expected - s->expected_prior;
    s->expected_prior = expected;
    received_interval = s->received - s->received_prior;
    s->received_prior = s->received;
    lost_interval = (int64_t)expected_interval - received_interval;

    if (expected_interval == 0 || lost_interval <= 0)
        rb->fraction_lost = 0;
    else if (lost_interval >= expected_interval)
        rb->fraction_lost = 255;    /* 256/256 does not fit in 8 bits */
    else
        rb->fraction_lost = (uint8_t)((lost_interval << 8) / expected_interval);
    rb->cumulative_lost = (int32_t)lost;
    rb->ext_highest_seq = extended_max;
    rb->jitter = s->jitter_q4 >> 4;
}

/* Monotonic microseconds to RTP units, modulo 2^32; see brg_rtp.h. Split
 * in seconds and remainder so the product never overflows in a way that
 * matters (only the low 32 bits are kept). */
uint32_t brg_rtp_arrival(uint64_t now_us, uint32_t clock_rate)
{
    uint64_t sec = now_us / 1000000;
    uint64_t rem = now_us % 1000000;

    return (uint32_t)(sec * clock_rate + rem * clock_rate / 1000000);
}
