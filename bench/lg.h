/*
 * lg.h: chorus-loadgen's internals, shared by chorus_loadgen.c (options,
 * the run's phases, measurement, the report) and lg_legs.c (one leg's
 * sockets, joining, sending and receiving).
 *
 * One libuv loop drives every leg. Each leg has its own UDP socket, as a
 * real client would; a secure leg also has its own identity, endpoint and
 * session (ovl_secure.h), a plain leg a participant created over the REST
 * API. All legs send one pre-encoded 20 ms Opus frame per 20 ms, paced from
 * absolute deadlines (uv_hrtime), their phases spread evenly over the
 * frame; every leg counts what it receives (RTP sequence gaps, RFC 3550
 * interarrival jitter); a few "listener" legs also decode what they hear to
 * time the talkers' markers (lg_audio.h).
 *
 * Thread: loop, except struct lg_leg.api_ready and the plain-leg fields
 * it publishes, written once by the API worker (uv_queue_work) before the
 * release store.
 */
#ifndef LG_H
#define LG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <uv.h>

#include "brg_rtp.h"
#include "lg_audio.h"
#include "lg_http.h"
#include "lg_proc.h"
#include "ovl_secure.h"

enum {
    LG_FRAME_NS = LG_FRAME_MS * 1000000,
    LG_TICK_MS = 1,                  /* pacing timer period */
    LG_CATCHUP_NS = 100 * 1000000,   /* a leg further behind skips frames */
    LG_TIMERS_EVERY_NS = 20 * 1000000, /* session timers visited this often */
    LG_KEY_RETRY_NS = 1000000000,    /* key request resent after 1 s */
    LG_MAX_LEGS = 10000,             /* a room's max_participants */
    LG_LATE_BUCKETS = 2000,          /* send lateness, 0.1 ms buckets */
    LG_MAX_MARKERS = 16384,          /* marker sends kept per run */
    LG_MAX_SAMPLES = 65536,          /* latency samples kept per run */
};

enum lg_kind { LG_KIND_SECURE = 0, LG_KIND_RTP, LG_KIND_MIXED };

enum lg_leg_state {
    LG_LEG_IDLE = 0,     /* not started (secure) / no participant yet (rtp) */
    LG_LEG_HANDSHAKE,    /* INIT sent, waiting for the RESP */
    LG_LEG_JOINED,       /* sending and receiving media */
    LG_LEG_FAILED,       /* refused, handshake gave up, or API error */
    LG_LEG_GONE,         /* the bridge ended it (BYE) */
    LG_LEG_LEFT,         /* we left (BYE, or the run's end for plain legs) */
};

/* Command-line options. Read-only once parsed. */
struct lg_opts {
    unsigned legs;           /* --legs N */
    unsigned talkers;        /* --talkers T */
    enum lg_kind kind;       /* --kind */
    const char *room;        /* --room */
    const char *bridge;      /* --bridge host:port (media) */
    const char *api;         /* --api URL */
    const char *token;       /* --token, else --state-dir/api-token */
    const char *state_dir;   /* --state-dir */
    double seconds;          /* --seconds: measured window */
    double warmup;           /* --warmup: after the last join */
    double join_rate;        /* --join-rate: secure handshakes per second */
    double join_timeout;     /* --join-timeout: seconds for all joins */
    double leave_rate;       /* --leave-rate: secure BYEs per second */
    unsigned listeners;      /* --listeners: legs that decode */
    pid_t bridge_pid;        /* --bridge-pid, else found by name */
    uint32_t bitrate;        /* --bitrate */
    bool keep_room;          /* --keep-room: do not delete a room we made */
    bool json;               /* --json */
};

/* One marker burst sent by a talker. */
struct lg_marker {
    uint8_t talker;
    uint32_t number;         /* the talker's marker count */
    uint64_t sent_ns;
};

/* One latency measurement: a listener heard a marker. */
struct lg_sample {
    uint64_t sent_ns;        /* when the marker left its talker */
    uint64_t latency_ns;     /* heard in the mix minus sent */
};

struct lg;

/* One simulated participant. Owned by struct lg (array). */
struct lg_leg {
    struct lg *g;
    unsigned idx;
    enum lg_kind kind;               /* SECURE or RTP */
    enum lg_leg_state state;
    int talker;                      /* talker index, -1: silent */
    uv_udp_t udp;
    bool udp_open;
    uint16_t local_port;             /* our port */
    struct sockaddr_storage dst;     /* where our media goes */
    uint32_t participant;            /* the bridge's id, 0 until known */

    /* secure legs (NULL for plain ones) */
    struct ovl_identity *id;
    struct ovl_endpoint *ep;
    struct ovl_session *s;
    bool session_up;
    uint64_t hs_start_ns, joined_ns;

    /* plain legs: filled by the API worker, then published */
    uint16_t bridge_port;
    atomic_int api_ready;            /* 1: created, -1: failed */

    /* sending */
    uint64_t next_send_ns;           /* absolute deadline */
    uint32_t frame_no;
    uint16_t seq;
    uint32_t ts, ssrc;
    bool sent_any;

    /* receiving */
    bool rx_started;
    uint32_t rx_ssrc;
    struct brg_rtp_stats rx;
    uint64_t rx_packets;             /* all, accepted by the parser */
    uint32_t win_ext0, win_recv0;    /* at the window's start */
    bool win_started;                /* stats seen at the window's start */
    uint32_t win_jitter_max_q4;

    /* listeners only */
    struct lg_listener *listener;
    uint32_t heard[LG_MAX_TALKERS];  /* marker numbers already matched + 1 */
};

/* What a window edge records about the bridge and the system. */
struct lg_edge {
    struct lg_cpu_sample bridge;
    uint64_t self_cpu_ns;
    uint64_t wall_ns;
    struct lg_metrics m;
    uint64_t bridge_drops;           /* /proc/net/udp, the bridge's ports */
    uint64_t own_drops;              /* ... our ports */
    uint64_t rcvbuf_errors;          /* /proc/net/snmp */
    uint64_t host_busy_ns;           /* /proc/stat, all CPUs */
    uint64_t host_total_ns;
};

/* The window's receive totals, taken at its end. */
struct lg_totals {
    uint64_t expected;               /* by RTP sequence numbers */
    uint64_t received;
    uint64_t by_time;                /* one packet per 20 ms per joined leg */
    unsigned silent_legs;            /* joined legs that heard nothing */
    unsigned listeners;              /* joined listener legs */
    uint32_t jitter_max_q4;          /* largest RFC 3550 estimate seen */
};

enum lg_phase {
    LG_PH_JOIN = 0,      /* key request, handshakes, API worker */
    LG_PH_WARMUP,        /* everyone joined: let the bridge settle */
    LG_PH_MEASURE,       /* the window */
    LG_PH_DRAIN,         /* waiting for the end edge's snapshot */
    LG_PH_LEAVE,         /* paced goodbyes */
    LG_PH_DONE,
};

/* The run. One per process. */
struct lg {
    struct lg_opts o;
    uv_loop_t *loop;
    uv_timer_t tick;
    uv_signal_t sigint;
    struct lg_api api;               /* set-up, the API worker, teardown */
    struct lg_api api_edge;          /* the edge snapshots (pool thread) */
    struct lg_audio audio;
    struct sockaddr_storage bridge;  /* media address */
    char bridge_host[64];
    bool room_created;
    uint8_t bridge_pk[OVL_ED_PK_LEN];
    bool have_key;
    uint64_t key_sent_ns;

    struct lg_leg *legs;
    unsigned n, n_secure, n_rtp;

    enum lg_phase phase;
    bool stop_requested;             /* SIGINT */
    uint64_t t0_ns;                  /* loop start */
    uint64_t joined_all_ns;          /* end of the join phase */
    uint64_t win_start_ns, win_end_ns;
    struct lg_totals win;
    uint64_t next_timers_ns;
    uint64_t leave_start_ns;         /* LG_PH_LEAVE began */
    uint64_t last_bye_ns;
    unsigned byes;                   /* secure legs told to leave */
    unsigned hs_started;             /* secure legs given an INIT */
    bool api_done;                   /* the API worker finished */
    atomic_bool api_abort;           /* tells the API worker to stop */
    bool edge_busy;                  /* an edge snapshot is in flight */
    uv_work_t api_work, edge_work;
    struct lg_edge edge[2];          /* window start, end */
    unsigned edge_idx;
    uint16_t *bridge_ports;          /* for the drop counters */
    size_t n_bridge_ports;
    uint16_t *own_ports;

    /* counters (whole run unless "win") */
    unsigned joined, failed, gone;
    uint64_t cookies, refused, hs_failed;
    uint64_t tx_packets, tx_errors, tx_skipped;
    uint64_t win_tx, win_skipped, win_late[LG_LATE_BUCKETS + 1];
    uint64_t rx_invalid;
    uint64_t win_jitter_sum_q4, win_jitter_n;
    uint32_t *hs_ms;                 /* handshake durations, ms */
    unsigned n_hs;
    struct lg_marker *markers;
    unsigned n_markers;
    struct lg_sample *samples;
    unsigned n_samples;
    char first_error[160];           /* the first join failure's reason */
};

/* ---- lg_legs.c ---- */

/* Sets leg @i up: socket bound to an ephemeral port of the bridge's
 * address family, reading; a secure leg gets its identity, endpoint and
 * session. Returns 0 or a negative errno. */
int lg_leg_init(struct lg *g, struct lg_leg *l, unsigned i);

/* Closes the leg's socket and frees what lg_leg_init allocated (the
 * memory of the socket handle is the leg's own: free the array only after
 * the loop has run the close callbacks). */
void lg_leg_close(struct lg_leg *l);

/* Secure legs: asks the bridge for its key from leg @l. */
void lg_leg_key_request(struct lg_leg *l);

/* Secure legs: starts the handshake (the bridge's key must be known). */
void lg_leg_connect(struct lg_leg *l, uint64_t now);

/* Secure legs: runs the session's timers when due. */
void lg_leg_timers(struct lg_leg *l, uint64_t now);

/* Sends what the leg owes at @now (frames whose deadline passed, bounded
 * by LG_CATCHUP_NS). */
void lg_leg_pace(struct lg_leg *l, uint64_t now);

/* Leaves: a sealed BYE for a joined secure leg; the leg stops sending. */
void lg_leg_bye(struct lg_leg *l);

/* Records the leg's receive counters at the window's start. */
void lg_leg_window_start(struct lg_leg *l);

/* The window's expected and received packet counts of the leg. */
void lg_leg_window_counts(const struct lg_leg *l, uint64_t *expected, uint64_t *received);

/* ---- lg_report.c ---- */

/* Computes the run's figures and prints them to @f: one line, or one JSON
 * object with --json. Call once, after the loop has ended. */
void lg_report_print(struct lg *g, FILE *f);

/* ---- chorus_loadgen.c, called by lg_legs.c ---- */

/* A leg has joined (secure: RESP accepted; plain: created over the API). */
void lg_on_joined(struct lg *g, struct lg_leg *l, uint64_t now);

/* A leg failed to join; @why is kept for the report if it is the first. */
void lg_on_failed(struct lg *g, struct lg_leg *l, const char *why);

/* A talker sent its marker frame at @now. */
void lg_on_marker_sent(struct lg *g, struct lg_leg *l, uint64_t now);

/* A listener heard talker @talker's marker begin at @onset_ns. */
void lg_on_marker_heard(struct lg *g, struct lg_leg *l, unsigned talker, uint64_t onset_ns);

#endif /* LG_H */
