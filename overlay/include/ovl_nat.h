/*
 * ovl_nat.h: NAT and firewall discovery. A peer asks STUN servers (Chorus
 * supernodes, or any RFC 5780 server) a few Binding questions from one UDP
 * socket and classifies what sits between it and the Internet:
 *
 *   open             reflexive == local address, unsolicited inbound arrives
 *   firewalled       reflexive == local address, unsolicited inbound dropped
 *                    (RFC 3489's "symmetric UDP firewall")
 *   full-cone        one mapping for all destinations, anyone may send to it
 *                    (endpoint-independent mapping and filtering)
 *   restricted       one mapping; only IPs we sent to may answer
 *   port-restricted  one mapping; only the exact IP:port we sent to
 *   symmetric        a different mapping per destination
 *   udp-blocked      no answer at all
 *   cone             one mapping, filtering untested (no server could
 *                    answer from another address)
 *   unknown          not run yet, or not enough answers to tell
 *
 * The tests (RFC 3489 section 10.1's order, with RFC 5780's attributes):
 *   I    Binding to the primary server address S1 -> reflexive M1, and
 *        OTHER-ADDRESS S2 if the server has one. No answer: udp-blocked.
 *   II   to S1 with CHANGE-REQUEST(IP, port): answered from S2's IP and
 *        port. Reaches us only with endpoint-independent filtering.
 *   III  to S1 with CHANGE-REQUEST(port): answered from S1's IP, S2's port.
 *        Reaches us with address-dependent (or looser) filtering.
 *   IV   to S2 (or to a second server when S1 has no OTHER-ADDRESS)
 *        -> M2. M2 != M1: symmetric.
 * II and III only receive, so they run together; IV runs after them
 * because sending to S2 would open the filter for S2's answers to II. The
 * answer to II and III must really come from the changed address (checked
 * against the datagram's source), so a server that ignores CHANGE-REQUEST
 * cannot fake "full-cone".
 *
 * Every test retransmits as RFC 8489 section 6.2.1 says: first RTO
 * (default 500 ms), doubling, Rc requests (7), then Rm x RTO (16 x) of
 * waiting: 39.5 s with the defaults. Tests II and III end by this time-out
 * whenever the NAT filters, so a full run costs about one time-out; tests
 * and impatient callers shorten rto/rc/rm. When done, the machine reruns
 * itself every refresh_ms.
 *
 * Sans-I/O: the owner gives it received datagrams and the time, and takes
 * datagrams (with destinations) to send and the next timer. One probe runs
 * per struct ovl_nat; its socket must be used for nothing else while it
 * runs, or filtering results may be too generous. For the same reason
 * refresh_ms must exceed the NAT's UDP mapping time-out (30-180 s on
 * Linux): a pinhole left by the previous run's test IV would let test II's
 * answer through.
 *
 * Thread: one thread at a time per struct ovl_nat (the loop that owns its
 * socket). Pure otherwise.
 */
#ifndef OVL_NAT_H
#define OVL_NAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_rng.h"
#include "ovl_stun.h"

enum ovl_nat_type {
    OVL_NAT_UNKNOWN = 0,
    OVL_NAT_OPEN,
    OVL_NAT_FIREWALLED,
    OVL_NAT_FULL_CONE,
    OVL_NAT_RESTRICTED,
    OVL_NAT_PORT_RESTRICTED,
    OVL_NAT_CONE,
    OVL_NAT_SYMMETRIC,
    OVL_NAT_UDP_BLOCKED,
    OVL_NAT__COUNT
};

/* RFC 4787 mapping behaviour, as far as the tests can tell. */
enum ovl_nat_mapping {
    OVL_NAT_MAP_UNKNOWN = 0,
    OVL_NAT_MAP_NONE,              /* no translation (reflexive == local) */
    OVL_NAT_MAP_INDEPENDENT,       /* same mapping for S1 and S2 */
    OVL_NAT_MAP_DEPENDENT,         /* different mapping per destination */
};

/* RFC 4787 filtering behaviour. */
enum ovl_nat_filtering {
    OVL_NAT_FILTER_UNKNOWN = 0,
    OVL_NAT_FILTER_INDEPENDENT,    /* test II answered */
    OVL_NAT_FILTER_ADDRESS,        /* only III answered */
    OVL_NAT_FILTER_ADDRESS_PORT,   /* neither answered */
};

enum {
    OVL_NAT_RTO_MS = 500,               /* RFC 8489 initial RTO */
    OVL_NAT_RC = 7,                     /* RFC 8489 Rc */
    OVL_NAT_RM = 16,                    /* RFC 8489 Rm */
    OVL_NAT_REFRESH_MS = 10 * 60 * 1000, /* rerun every 10 minutes */
    OVL_NAT_MAX_RC = 16,                /* bound on rc (doubling) */
};

/* Configuration; copied by ovl_nat_init. */
struct ovl_nat_config {
    struct ovl_stun_addr server;   /* S1: required */
    struct ovl_stun_addr second;   /* another server for test IV when S1 has
                                      no OTHER-ADDRESS; family NONE: none */
    struct ovl_stun_addr local;    /* the probing socket's own address; with
                                      an unspecified IP or family NONE,
                                      "open" and "firewalled" are never found */
    uint32_t rto_ms;               /* 0: OVL_NAT_RTO_MS */
    uint32_t rc;                   /* 0: OVL_NAT_RC; at most OVL_NAT_MAX_RC */
    uint32_t rm;                   /* 0: OVL_NAT_RM */
    uint64_t refresh_ms;           /* 0: OVL_NAT_REFRESH_MS; UINT64_MAX: never */
    const char *software;          /* SOFTWARE in requests, or NULL */
    const struct ovl_rng *rng;     /* transaction ids; NULL: libsodium */
};

/* The outcome of a run. */
struct ovl_nat_result {
    enum ovl_nat_type type;
    enum ovl_nat_mapping mapping;
    enum ovl_nat_filtering filtering;
    struct ovl_stun_addr reflexive;   /* M1 (family NONE when unknown) */
    struct ovl_stun_addr reflexive2;  /* M2 from test IV, if it ran */
    struct ovl_stun_addr other;       /* S2 the server advertised */
    uint64_t completed_ms;            /* when this result was reached */
    uint32_t runs;                    /* completed runs so far */
};

/* Event bits returned by ovl_nat_recv and ovl_nat_timeout. */
enum {
    OVL_NAT_EV_DONE = 0x01,     /* a run completed: read ovl_nat_result */
    OVL_NAT_EV_CHANGED = 0x02,  /* ... and type or reflexive address differ
                                   from the previous run's */
};

enum { OVL_NAT_MAX_PROBES = 2 };   /* II and III run together */

/* One outstanding Binding transaction. Private. */
struct ovl_nat_probe {
    bool active;
    uint8_t test;                  /* 1..4 */
    uint8_t txid[OVL_STUN_TXID_LEN];
    struct ovl_stun_addr dst;
    uint32_t change;
    uint32_t sent;                 /* requests sent so far */
    uint32_t rto_ms;               /* current (doubled) RTO */
    uint64_t deadline_ms;          /* retransmit or give up at */
    bool send_due;                 /* a (re)transmission is waiting */
};

/* The classifier. Caller-allocated; all fields private except through the
 * functions below. */
struct ovl_nat {
    struct ovl_nat_config cfg;
    int phase;                     /* enum in ovl_nat.c */
    struct ovl_nat_probe probe[OVL_NAT_MAX_PROBES];
    /* Findings of the current run. */
    struct ovl_stun_addr m1, m2, other;
    bool got_m1, got_m2, ii_ok, iii_ok, change_ok;
    /* Last completed run, and when to run again. */
    struct ovl_nat_result result;
    uint64_t next_run_ms;
    uint32_t ignored;              /* datagrams not matching any probe */
};

/* Sets up @n with @cfg (copied). Does not start; see ovl_nat_start. */
void ovl_nat_init(struct ovl_nat *n, const struct ovl_nat_config *cfg);

/* Starts (or restarts) a run at @now_ms: test I is due at once. */
void ovl_nat_start(struct ovl_nat *n, uint64_t now_ms);

/* True while a run is in progress. */
bool ovl_nat_running(const struct ovl_nat *n);

/*
 * Takes the next datagram to send, if any is due at @now_ms: writes it to
 * @out (OVL_STUN_REQ_MAX bytes suffice), its length to *len and its
 * destination to *dst, and returns 1. Returns 0 when nothing is due and
 * -ENOBUFS if @cap is too small. Call it until it returns 0 after start,
 * recv and timeout.
 */
int ovl_nat_next_datagram(struct ovl_nat *n, uint64_t now_ms, uint8_t *out,
                          size_t cap, size_t *len, struct ovl_stun_addr *dst);

/*
 * Offers a datagram received on the probing socket from @src. Returns the
 * OVL_NAT_EV_* bits it caused (0 for most), or -ENOENT when it was not an
 * answer to an outstanding probe (stale, duplicate, foreign or malformed:
 * counted in n->ignored, never fatal).
 */
int ovl_nat_recv(struct ovl_nat *n, const uint8_t *buf, size_t len,
                 const struct ovl_stun_addr *src, uint64_t now_ms);

/* When ovl_nat_timeout should next run (UINT64_MAX: never). */
uint64_t ovl_nat_next_timer(const struct ovl_nat *n);

/* Processes every deadline up to @now_ms (retransmissions, give-ups, the
 * periodic refresh). Returns OVL_NAT_EV_* bits. */
int ovl_nat_timeout(struct ovl_nat *n, uint64_t now_ms);

/* The last completed result (type UNKNOWN, runs 0 before the first). */
const struct ovl_nat_result *ovl_nat_result(const struct ovl_nat *n);

/* "open", "full-cone", ... as listed above. */
const char *ovl_nat_type_name(enum ovl_nat_type t);
const char *ovl_nat_mapping_name(enum ovl_nat_mapping m);
const char *ovl_nat_filtering_name(enum ovl_nat_filtering f);

#endif /* OVL_NAT_H */
