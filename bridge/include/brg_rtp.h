/*
 * brg_rtp.h: RTP and RTCP wire formats for the bridge's media legs.
 *
 * Pure encode/decode, no I/O, no allocation, no libuv: every function here
 * works on caller buffers, so it can be unit-tested and fuzzed alone.
 *
 *   RTP (RFC 3550 §5.1) parse and build, with RFC 8285 header extensions
 *   (one-byte 0xBEDE and two-byte 0x100x forms) and the RFC 6464
 *   client-to-mixer audio level.
 *   RTCP (RFC 3550 §6) compound parse (SR, RR, SDES, BYE; APP and other
 *   types skipped) and compound RR/SR + SDES CNAME build.
 *   Receiver statistics (RFC 3550 appendix A.1, A.3, A.8) and LSR/DLSR.
 *   rtcp-mux demultiplexing (RFC 5761 §4).
 *
 * Everything received from the network is *input*: parse functions check
 * every bound and return a result naming the reason for a rejection. They
 * never assert and never read outside [buf, buf + len).
 *
 * Thread: any. No function here keeps global state; a struct brg_rtp_stats
 * belongs to one thread at a time (the loop, in the bridge).
 *
 * Usage (receive path of a leg):
 *
 *     switch (brg_rtp_demux(buf, len)) {
 *     case BRG_PKT_RTP: {
 *         struct brg_rtp_packet p;
 *         enum brg_rtp_result r = brg_rtp_parse(&p, buf, len,
 *                                               BRG_RTP_EXT_ID_AUDIO_LEVEL);
 *         if (r != BRG_RTP_OK) {
 *             leg->bad_rtp++;       // count it, maybe log rate-limited
 *             break;                // brg_rtp_result_str(r) names it
 *         }
 *         uint32_t arrival = brg_rtp_arrival(now_us, 48000);
 *         if (brg_rtp_stats_update(&leg->stats, p.seq, p.ts, arrival)
 *                 >= BRG_RTP_SEQ_PROBATION)
 *             break;                // not (yet) a valid packet of the source
 *         // hand p.payload / p.payload_len, p.level (if p.level_present)
 *         // and p.vad to the jitter buffer
 *         break;
 *     }
 *     case BRG_PKT_RTCP: {
 *         struct brg_rtcp_info info;
 *         if (brg_rtcp_parse(&info, buf, len) == BRG_RTCP_OK && info.has_sr)
 *             brg_rtp_stats_on_sr(&leg->stats, info.sr.ntp, now_us);
 *         break;
 *     }
 *     default:
 *         break;                    // not ours (STUN, overlay, garbage)
 *     }
 *
 * Usage (send path):
 *
 *     struct brg_rtp_header h = { .pt = 111, .seq = seq++, .ts = ts,
 *                                 .ssrc = my_ssrc };
 *     int n = brg_rtp_build(out, sizeof out, &h, opus, opus_len);
 *     if (n < 0) ...;               // -ENOBUFS, -EINVAL
 *
 *     struct brg_rtcp_report_block rb;
 *     brg_rtp_stats_report(&leg->stats, &rb, now_us);
 *     n = brg_rtcp_build_rr(out, sizeof out, my_ssrc, &rb, "chorus@host");
 */
#ifndef BRG_RTP_H
#define BRG_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    BRG_RTP_VERSION = 2,
    BRG_RTP_HEADER_LEN = 12,         /* fixed header, bytes */
    BRG_RTP_MAX_CSRC = 15,           /* CC is 4 bits */
    BRG_RTP_EXT_ID_AUDIO_LEVEL = 1,  /* default RFC 6464 extension id */
    BRG_RTP_LEVEL_MAX = 127,         /* RFC 6464 level: 0..127 -dBov */
    BRG_RTP_MIN_SEQUENTIAL = 2,      /* RFC 3550 A.1 probation packets */
    BRG_RTP_MAX_DROPOUT = 3000,      /* RFC 3550 A.1 */
    BRG_RTP_MAX_MISORDER = 100,      /* RFC 3550 A.1 */
    BRG_RTP_SEQ_MOD = 1 << 16,       /* RFC 3550 A.1 */
    BRG_RTCP_HEADER_LEN = 4,         /* common header, bytes */
    BRG_RTCP_MAX_BLOCKS = 31,        /* report blocks kept per compound */
    BRG_RTCP_MAX_BYE = 31,           /* BYE SSRCs kept per compound */
    BRG_RTCP_CNAME_MAX = 255,        /* SDES item length is one byte */
    BRG_RTCP_PT_SR = 200,
    BRG_RTCP_PT_RR = 201,
    BRG_RTCP_PT_SDES = 202,
    BRG_RTCP_PT_BYE = 203,
    BRG_RTCP_PT_APP = 204,
};

/* ---------------------------------------------------------------- RTP -- */

/* Why brg_rtp_parse rejected a packet (BRG_RTP_OK when it did not). */
enum brg_rtp_result {
    BRG_RTP_OK = 0,
    BRG_RTP_ERR_TOO_SHORT,      /* shorter than the 12-byte fixed header */
    BRG_RTP_ERR_VERSION,        /* version field is not 2 */
    BRG_RTP_ERR_CSRC,           /* CSRC list (CC * 4 bytes) runs past the end */
    BRG_RTP_ERR_EXT_HEADER,     /* X set but the 4-byte extension header
                                   runs past the end */
    BRG_RTP_ERR_EXT_LENGTH,     /* extension length runs past the end */
    BRG_RTP_ERR_EXT_ELEMENT,    /* an RFC 8285 element runs past the
                                   extension block */
    BRG_RTP_ERR_PADDING,        /* P set but the pad count is 0 or larger
                                   than what follows the headers */
    BRG_RTP_RESULT_COUNT        /* number of results, for counter arrays */
};

/* A parsed RTP packet. Pointers point into the buffer given to
 * brg_rtp_parse and are valid as long as it is. */
struct brg_rtp_packet {
    uint8_t version;            /* always 2 after BRG_RTP_OK */
    bool padding;               /* P bit */
    bool extension;             /* X bit */
    bool marker;                /* M bit */
    uint8_t pt;                 /* payload type, 0..127 */
    uint8_t csrc_count;         /* CC, 0..15 */
    uint16_t seq;               /* sequence number */
    uint32_t ts;                /* timestamp */
    uint32_t ssrc;              /* synchronisation source */
    uint32_t csrc[BRG_RTP_MAX_CSRC]; /* csrc_count entries are valid */
    uint16_t ext_profile;       /* "defined by profile" field, 0 if no X */
    const uint8_t *ext;         /* extension body after its 4-byte header */
    size_t ext_len;             /* bytes at ext (length field * 4) */
    bool level_present;         /* RFC 6464 element with the asked id seen */
    bool vad;                   /* RFC 6464 V bit (false when absent) */
    uint8_t level;              /* RFC 6464 level 0..127 -dBov (127 when
                                   absent: silence) */
    uint8_t pad_len;            /* padding bytes removed (incl. count byte) */
    const uint8_t *payload;     /* payload, after headers, before padding */
    size_t payload_len;         /* may be 0 */
};

/* What to put in a built packet's header. */
struct brg_rtp_header {
    uint8_t pt;                 /* payload type, 0..127 */
    bool marker;                /* M bit */
    uint16_t seq;               /* sequence number */
    uint32_t ts;                /* timestamp */
    uint32_t ssrc;              /* synchronisation source */
    bool level_present;         /* add a one-byte-header (0xBEDE) extension
                                   with an RFC 6464 audio level */
    bool vad;                   /* RFC 6464 V bit */
    uint8_t level;              /* 0..127 -dBov */
    uint8_t level_ext_id;       /* 1..14; 0 means BRG_RTP_EXT_ID_AUDIO_LEVEL */
};

/* Parses the RTP packet of @len bytes at @buf into @out (RFC 3550 §5.1).
 * When @level_ext_id is 1..14 (one-byte form) or 1..255 (two-byte form),
 * the RFC 6464 audio level element with that id is extracted; 0 disables
 * the lookup. Other extension profiles are kept in out->ext but not
 * interpreted. RFC 8285 padding bytes (id 0) are skipped; a one-byte id 15
 * stops the element walk, as RFC 8285 §4.2 says.
 * Returns BRG_RTP_OK, or the reason for rejecting the packet (then @out is
 * partly filled and must not be used). Never reads outside the buffer. */
enum brg_rtp_result brg_rtp_parse(struct brg_rtp_packet *out,
                                  const uint8_t *buf, size_t len,
                                  uint8_t level_ext_id);

/* Returns a short constant English name of @r ("too short", "bad
 * version"...); "unknown" for values out of range. */
const char *brg_rtp_result_str(enum brg_rtp_result r);

/* Writes an RTP packet (version 2, no padding, no CSRC) with header @h and
 * the @payload_len bytes at @payload into @buf of @cap bytes. With
 * h->level_present, a one-byte-header extension (8 bytes) carries the
 * audio level. Returns the packet length in bytes, -ENOBUFS when @cap is
 * too small (nothing useful is written) or -EINVAL when a header field is
 * out of range (pt > 127, level > 127, ext id > 14). */
int brg_rtp_build(uint8_t *buf, size_t cap, const struct brg_rtp_header *h,
                  const uint8_t *payload, size_t payload_len);

/* ------------------------------------------------------------ demux -- */

enum brg_pkt_kind {
    BRG_PKT_OTHER = 0,          /* not RTP/RTCP: first byte outside
                                   128..191 (RFC 7983) or too short */
    BRG_PKT_RTP,
    BRG_PKT_RTCP,               /* RFC 5761 §4: PT field 64..95 */
};

/* Classifies a datagram received on an rtcp-mux port: version 2 and at
 * least 4 bytes, then RTCP when the second byte without the marker bit is
 * in 64..95 (RTCP types 192..223), RTP otherwise. Does not validate. */
enum brg_pkt_kind brg_rtp_demux(const uint8_t *buf, size_t len);

/* --------------------------------------------------------------- RTCP -- */

/* Why brg_rtcp_parse rejected a compound packet. */
enum brg_rtcp_result {
    BRG_RTCP_OK = 0,
    BRG_RTCP_ERR_TOO_SHORT,     /* empty, or a packet shorter than 4 bytes,
                                   or a length not a multiple of 4 */
    BRG_RTCP_ERR_VERSION,       /* a packet's version is not 2 */
    BRG_RTCP_ERR_LENGTH,        /* a length field runs past the end */
    BRG_RTCP_ERR_FIRST,         /* first packet is not SR or RR (§6.1) */
    BRG_RTCP_ERR_PADDING,       /* P bit on a packet that is not the last,
                                   or a bad pad count */
    BRG_RTCP_ERR_COUNT,         /* SR/RR blocks or BYE sources do not fit
                                   in the packet length */
    BRG_RTCP_ERR_SDES,          /* SDES chunk or item runs past the packet */
    BRG_RTCP_ERR_BYE,           /* BYE reason runs past the packet */
    BRG_RTCP_RESULT_COUNT
};

/* One reception report block (RFC 3550 §6.4.1), in host order. */
struct brg_rtcp_report_block {
    uint32_t ssrc;              /* source this block reports on */
    uint8_t fraction_lost;      /* 8-bit fixed point, lost/expected * 256 */
    int32_t cumulative_lost;    /* signed 24-bit, clamped on build */
    uint32_t ext_highest_seq;   /* cycles << 16 | highest seq */
    uint32_t jitter;            /* interarrival jitter, RTP clock units */
    uint32_t lsr;               /* middle 32 bits of last SR NTP time, 0 */
    uint32_t dlsr;              /* delay since that SR, 1/65536 s, 0 */
};

/* Sender info of an SR (RFC 3550 §6.4.1). */
struct brg_rtcp_sr {
    uint32_t ssrc;              /* sender */
    uint64_t ntp;               /* NTP timestamp, 32.32 fixed point */
    uint32_t rtp_ts;            /* RTP time matching ntp */
    uint32_t packet_count;      /* sender's packet count */
    uint32_t octet_count;       /* sender's payload octet count */
};

/* What brg_rtcp_parse found in a compound packet. Only the first SR, the
 * first RR's sender and the first CNAME are kept; report blocks of all SR
 * and RR packets are collected up to BRG_RTCP_MAX_BLOCKS. */
struct brg_rtcp_info {
    unsigned packets;           /* RTCP packets in the compound */
    unsigned skipped;           /* APP, feedback and unknown types */
    bool has_sr;                /* sr is valid */
    struct brg_rtcp_sr sr;
    bool has_rr;                /* rr_ssrc is valid */
    uint32_t rr_ssrc;           /* sender SSRC of the first RR */
    unsigned n_blocks;          /* valid entries in blocks[] */
    unsigned blocks_dropped;    /* blocks beyond BRG_RTCP_MAX_BLOCKS */
    struct brg_rtcp_report_block blocks[BRG_RTCP_MAX_BLOCKS];
    bool has_cname;             /* cname is valid */
    uint32_t cname_ssrc;        /* SSRC of the chunk carrying cname */
    char cname[BRG_RTCP_CNAME_MAX + 1]; /* NUL-terminated; bytes as sent,
                                           except NUL which ends it */
    unsigned n_bye;             /* valid entries in bye[] */
    uint32_t bye[BRG_RTCP_MAX_BYE]; /* sources that said BYE */
};

/* Parses and validates the compound RTCP packet of @len bytes at @buf
 * (RFC 3550 §6.1 and A.2): every packet version 2, lengths adding up to
 * @len exactly, first packet SR or RR, padding only on the last one.
 * Returns BRG_RTCP_OK with @out filled, or the reason for rejecting the
 * whole compound (then @out must not be used). */
enum brg_rtcp_result brg_rtcp_parse(struct brg_rtcp_info *out,
                                    const uint8_t *buf, size_t len);

/* Returns a short constant English name of @r; "unknown" if out of range. */
const char *brg_rtcp_result_str(enum brg_rtcp_result r);

/* Writes a compound RTCP packet into @buf of @cap bytes: an RR from @ssrc
 * with one report block (@block, or none when NULL), then an SDES packet
 * with one chunk carrying the CNAME @cname (1..255 bytes).
 * Returns the length in bytes, -ENOBUFS if @cap is too small, -EINVAL if
 * @cname is NULL, empty or too long. */
int brg_rtcp_build_rr(uint8_t *buf, size_t cap, uint32_t ssrc,
                      const struct brg_rtcp_report_block *block,
                      const char *cname);

/* Same as brg_rtcp_build_rr but begins with an SR carrying @sr (sr->ssrc is
 * the sender) for legs the bridge sends media on. */
int brg_rtcp_build_sr(uint8_t *buf, size_t cap, const struct brg_rtcp_sr *sr,
                      const struct brg_rtcp_report_block *block,
                      const char *cname);

/* Returns the 64-bit NTP timestamp (RFC 5905, 32.32 fixed point, seconds
 * since 1900) for @unix_us microseconds since 1970. */
uint64_t brg_ntp_from_unix_us(uint64_t unix_us);

/* ---------------------------------------------- receiver statistics -- */

/* Per-source receiver state of RFC 3550 appendix A.1/A.3/A.8. Allocated
 * by the caller, set up with brg_rtp_stats_init. Fields are read-only for
 * the caller. Thread: one owner (the loop). */
struct brg_rtp_stats {
    uint32_t ssrc;              /* source described */
    bool started;               /* a packet was seen since init/restart */
    uint16_t max_seq;           /* highest seq number seen (A.1) */
    uint32_t cycles;            /* shifted count of seq number cycles */
    uint32_t base_seq;          /* first seq of the current run */
    uint32_t bad_seq;           /* last 'bad' seq + 1 (A.1) */
    uint32_t probation;         /* sequential packets till source valid */
    uint32_t received;          /* packets received (incl. duplicates) */
    uint32_t expected_prior;    /* packets expected at last report */
    uint32_t received_prior;    /* packets received at last report */
    bool have_transit;          /* transit is set */
    uint32_t transit;           /* relative transit of the previous packet */
    uint32_t jitter_q4;         /* estimated jitter * 16 (A.8) */
    uint32_t restarts;          /* sender restarts detected (A.1 bad_seq) */
    uint32_t bad;               /* packets dropped as a big jump (A.1) */
    uint32_t lsr;               /* middle 32 bits of the last SR's NTP time */
    uint64_t lsr_arrival_us;    /* our monotonic time that SR arrived */
};

/* What brg_rtp_stats_update made of a packet. Values below
 * BRG_RTP_SEQ_PROBATION mean the packet is valid and was counted. */
enum brg_rtp_seq_result {
    BRG_RTP_SEQ_OK = 0,         /* counted (in order, late or duplicate) */
    BRG_RTP_SEQ_RESTART,        /* counted; the sender restarted and the
                                   statistics were reset (A.1) */
    BRG_RTP_SEQ_PROBATION,      /* source not yet valid, not counted */
    BRG_RTP_SEQ_BAD,            /* large jump, not counted; a following
                                   packet in sequence restarts */
};

/* Resets @s for the source @ssrc (no packet seen yet). */
void brg_rtp_stats_init(struct brg_rtp_stats *s, uint32_t ssrc);

/* Accounts one received packet with sequence number @seq and RTP timestamp
 * @ts, arrived at @arrival (our clock in RTP timestamp units, see
 * brg_rtp_arrival): sequence validation of A.1, interarrival jitter of
 * A.8 (for counted packets only). */
enum brg_rtp_seq_result brg_rtp_stats_update(struct brg_rtp_stats *s,
                                             uint16_t seq, uint32_t ts,
                                             uint32_t arrival);

/* Records an SR from the source: @ntp is its NTP timestamp, @now_us our
 * monotonic clock in microseconds when it arrived (LSR/DLSR). */
void brg_rtp_stats_on_sr(struct brg_rtp_stats *s, uint64_t ntp,
                         uint64_t now_us);

/* Fills the report block @rb for the source at monotonic time @now_us
 * (A.3: cumulative lost, fraction lost since the previous call, extended
 * highest sequence; jitter; LSR and DLSR). Starts a new reporting
 * interval: call it once per RTCP report sent. */
void brg_rtp_stats_report(struct brg_rtp_stats *s,
                          struct brg_rtcp_report_block *rb, uint64_t now_us);

/* Extended highest sequence number received (cycles + max_seq). */
uint32_t brg_rtp_stats_ext_max(const struct brg_rtp_stats *s);

/* Converts monotonic microseconds @now_us to an arrival time in RTP units
 * of a @clock_rate Hz clock (wraps modulo 2^32, as RTP timestamps do). */
uint32_t brg_rtp_arrival(uint64_t now_us, uint32_t clock_rate);

#endif /* BRG_RTP_H */
