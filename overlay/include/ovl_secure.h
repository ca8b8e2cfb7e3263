/*
 * ovl_secure.h: the Chorus secure-session layer, sans-I/O.
 *
 * What it is
 * ----------
 * WireGuard's protocol, adapted: a Noise_IK_25519_ChaChaPoly_BLAKE2b
 * handshake (ovl_noise.h) carrying application payloads, mac1/mac2 and
 * cookie replies against denial of service, session indices for
 * demultiplexing and roaming, ChaCha20-Poly1305 transport with a 64-bit
 * counter and a 2048-bit replay window, and timer-driven rekeying. The
 * wire formats are in ovl_wire.h; docs/protocol.md has the layouts, state
 * machines and constants in prose.
 *
 * Sans-I/O
 * --------
 * Nothing here reads a clock, opens a socket, sleeps, allocates after init,
 * starts a thread or logs. The caller
 *  - hands in every received message with its source address and the
 *    current monotonic time `now` (uint64_t nanoseconds; any origin, never
 *    going back): ovl_endpoint_recv;
 *  - gets back what to do: a datagram to send back to the source, a
 *    handshake to accept or reject, decrypted data, events (struct ovl_rx);
 *  - asks each session when it next needs attention
 *    (ovl_session_next_timer) and calls ovl_session_timers at that time,
 *    sending the datagrams it returns to ovl_session_addr();
 *  - supplies randomness through an RNG hook (ovl_rng.h), so a simulated
 *    network of thousands of nodes is reproducible from one seed.
 * The same code therefore runs under libuv (UDP and TCP legs of the
 * bridge, the client) and inside a simulator.
 *
 * Objects
 * -------
 *  struct ovl_endpoint  one per local identity and socket set: DoS state
 *                       (cookie secret, load detection, rate limits), the
 *                       session-index table, the INIT timestamp table and
 *                       the drop counters. Caller-allocated; _init
 *                       allocates its tables, _close frees them.
 *  struct ovl_session   one per peer: up to three keypairs (current,
 *                       previous, next), the initiator's handshake in
 *                       flight, timers, the peer's current address.
 *                       Caller-allocated; registered with one endpoint.
 *  struct ovl_hs        a responder's pending handshake: filled by
 *                       ovl_endpoint_recv when an INIT authenticates, then
 *                       consumed by ovl_hs_responder_accept/_reject/_discard.
 *
 * Roles: the session that connects (the initiator: a client, or a node
 * calling another) also rekeys; the responder never starts a handshake and
 * needs no knowledge of the initiator's reachability.
 *
 * Errors: functions return 0 or a negative errno. Bad input from the
 * network is never an error of the caller: ovl_endpoint_recv returns
 * -EBADMSG, counts the reason in ep->counters.drops[] and reports it in
 * rx->drop. Misuse by the caller (wrong state, buffer too small) returns
 * -EINVAL / -ENOBUFS.
 *
 * Thread: loop. An endpoint and its sessions form one unit that a single
 * thread drives; nothing here locks.
 */
#ifndef OVL_SECURE_H
#define OVL_SECURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_identity.h"
#include "ovl_noise.h"
#include "ovl_rng.h"
#include "ovl_wire.h"

/* ------------------------------------------------------------------------
 * Constants (WireGuard's values, section 6.1 of its paper; ns)
 * ------------------------------------------------------------------------ */

#define OVL_NS_PER_SEC 1000000000ull
#define OVL_NEVER UINT64_MAX /* "no deadline" */

#define OVL_REKEY_AFTER_TIME (120 * OVL_NS_PER_SEC)
#define OVL_REJECT_AFTER_TIME (180 * OVL_NS_PER_SEC)
#define OVL_REKEY_ATTEMPT_TIME (90 * OVL_NS_PER_SEC)
#define OVL_REKEY_TIMEOUT (5 * OVL_NS_PER_SEC)
#define OVL_REKEY_TIMEOUT_JITTER (OVL_NS_PER_SEC / 3) /* 0..333 ms added */
#define OVL_KEEPALIVE_TIMEOUT (10 * OVL_NS_PER_SEC)
#define OVL_COOKIE_SECRET_MAX_AGE (120 * OVL_NS_PER_SEC)
#define OVL_COOKIE_SECRET_LATENCY (5 * OVL_NS_PER_SEC)
#define OVL_UNDER_LOAD_HOLD (1 * OVL_NS_PER_SEC)
/* One INIT per initiator key per 1/50 s at most (WireGuard's
 * INITIATIONS_PER_SECOND); also the whitening of TAI64N timestamps. */
#define OVL_INIT_MIN_INTERVAL (OVL_NS_PER_SEC / 50)
#define OVL_TIMESTAMP_GRANULE (1ull << 24) /* ns, about 16.8 ms */

#define OVL_REKEY_AFTER_MESSAGES (1ull << 60)
#define OVL_REJECT_AFTER_MESSAGES (UINT64_MAX - OVL_REPLAY_WINDOW - 1)

enum {
    OVL_REPLAY_BITS = 2048,                   /* bitmap size */
    OVL_REPLAY_WINDOW = OVL_REPLAY_BITS - 64, /* 1984 counters behind the top
                                                 are always judged exactly */
    OVL_ADDR_MAX = 32,        /* caller's compact source address (e.g. family
                                 + port + IPv6 address), opaque bytes */
    OVL_KEY_REQUESTS_MAX = 4, /* outstanding KEY_REQs per endpoint */
    OVL_ADDR_BUCKETS = 1024,  /* per-source rate limiter slots (hashed) */
    OVL_ADDR_RATE = 20,       /* INITs/s per source while under load */
    OVL_ADDR_BURST = 5,
    OVL_DEFAULT_MAX_SESSIONS = 1024,
    OVL_DEFAULT_MAX_PEERS = 4096,
    OVL_DEFAULT_HANDSHAKE_RATE = 1000, /* INITs/s before "under load" */
    OVL_DEFAULT_HANDSHAKE_BURST = 100,
};

/* The Noise prologue of every Chorus handshake, followed by the INIT's
 * first 8 bytes (header and sender index). */
#define OVL_PROLOGUE "Chorus secure session v1"

/* ------------------------------------------------------------------------
 * Replay window (RFC 6479, as WireGuard's counter.c)
 * ------------------------------------------------------------------------ */

struct ovl_replay {
    uint64_t next;                            /* greatest accepted + 1 */
    uint64_t bitmap[OVL_REPLAY_BITS / 64];    /* ring of seen counters */
};

void ovl_replay_init(struct ovl_replay *r);

/* Accepts @counter (and records it) if it was never seen, is not older than
 * the window, and is below OVL_REJECT_AFTER_MESSAGES. Call only after the
 * packet has authenticated. */
bool ovl_replay_check(struct ovl_replay *r, uint64_t counter);

/* ------------------------------------------------------------------------
 * Counters and limits
 * ------------------------------------------------------------------------ */

/* Everything an endpoint counts. Read-only for the caller; plain integers
 * (one thread). */
struct ovl_counters {
    uint64_t drops[OVL_DROP__COUNT]; /* by enum ovl_drop */
    uint64_t rx_data;            /* DATA messages accepted with payload */
    uint64_t rx_keepalive;       /* ... without */
    uint64_t rx_bytes;           /* plaintext bytes accepted */
    uint64_t tx_data;
    uint64_t tx_keepalive;
    uint64_t tx_bytes;
    uint64_t hs_init_sent;       /* INITs built (first, retransmit, rekey) */
    uint64_t hs_init_valid;      /* INITs that authenticated (responder) */
    uint64_t hs_accepted;        /* RESPs sent with ACCEPT */
    uint64_t hs_rejected;        /* RESPs sent with REJECT */
    uint64_t hs_completed;       /* initiator: RESP ACCEPT consumed */
    uint64_t hs_refused;         /* initiator: RESP REJECT consumed */
    uint64_t hs_failed;          /* initiator gave up (REKEY_ATTEMPT_TIME) */
    uint64_t cookies_sent;
    uint64_t cookies_received;
    uint64_t under_load_entered; /* the handshake bucket ran dry */
    uint64_t key_replies_sent;
    uint64_t timestamp_evictions; /* INIT timestamp table was full */
    uint64_t addr_changes;       /* roaming events */
};

/* Protocol limits. Zero fields mean "default" (the constants above); tests
 * shrink them to exercise rekeying without sending 2^60 messages. */
struct ovl_limits {
    uint64_t rekey_after_time;
    uint64_t reject_after_time;
    uint64_t rekey_attempt_time;
    uint64_t rekey_timeout;
    uint64_t keepalive_timeout;
    uint64_t rekey_after_messages;
    uint64_t reject_after_messages;
    uint64_t persistent_keepalive; /* 0: off (default); else send a
                                      keepalive when idle this long (NAT) */
};

/* ------------------------------------------------------------------------
 * Received-message results
 * ------------------------------------------------------------------------ */

/* Event bits in struct ovl_rx.events and from ovl_session_timers. */
enum {
    OVL_EV_ESTABLISHED = 1u << 0,      /* initiator: RESP ACCEPT, new keys
                                          in use (first time or rekey) */
    OVL_EV_REJECTED = 1u << 1,         /* initiator: RESP REJECT; the
                                          responder's payload is rx->data.
                                          Ends a session that has no keys
                                          (no OVL_EV_EXPIRED follows) */
    OVL_EV_KEY_CONFIRMED = 1u << 2,    /* responder: first packet under the
                                          new keys; the session can send */
    OVL_EV_ADDR_CHANGED = 1u << 3,     /* authenticated packet from a new
                                          source: ovl_session_addr changed */
    OVL_EV_HANDSHAKE_FAILED = 1u << 4, /* initiator gave up after
                                          REKEY_ATTEMPT_TIME */
    OVL_EV_EXPIRED = 1u << 5,          /* no usable keys and no handshake
                                          under way: the session is dead */
};

enum ovl_rx_kind {
    OVL_RX_NONE = 0,  /* dropped (see rx.drop) or consumed silently */
    OVL_RX_REPLY,     /* send rx.reply back to the message's source; rx.drop
                         may say why the message itself was not processed
                         (a COOKIE in answer to an INIT) */
    OVL_RX_HANDSHAKE, /* an INIT authenticated: rx.peer says who, rx.data is
                         its payload; answer with ovl_hs_responder_accept
                         or _reject, or ovl_hs_discard */
    OVL_RX_RESPONSE,  /* a RESP was consumed by rx.session: see rx.events
                         (ESTABLISHED or REJECTED); rx.data is its payload */
    OVL_RX_DATA,      /* rx.data is decrypted payload of rx.session */
    OVL_RX_KEEPALIVE, /* an empty DATA of rx.session */
    OVL_RX_KEY_REPLY, /* answer to ovl_endpoint_key_request: rx.peer */
};

struct ovl_peer_info {
    uint8_t identity[OVL_ED_PK_LEN];  /* Ed25519 public key */
    uint8_t node_id[OVL_NODE_ID_LEN]; /* BLAKE2b-256(identity) */
    uint8_t static_pk[OVL_X_LEN];     /* X25519 key used by Noise */
    uint8_t flags;                    /* INIT flags (OVL_INIT_FLAG_REKEY) */
};

struct ovl_rx {
    enum ovl_rx_kind kind;
    enum ovl_drop drop;           /* reason, when not processed */
    struct ovl_session *session;  /* RESPONSE, DATA, KEEPALIVE, and REPLY
                                     to a COOKIE */
    uint32_t events;              /* OVL_EV_* */
    const uint8_t *data;          /* payload (points into the out buffer) */
    size_t data_len;
    const uint8_t *reply;         /* datagram to send (in the out buffer) */
    size_t reply_len;
    struct ovl_peer_info peer;    /* HANDSHAKE, KEY_REPLY */
};

/* One received message. */
struct ovl_datagram {
    const uint8_t *buf;
    size_t len;
    const uint8_t *addr; /* source, in the caller's compact form; compared
                            bytewise and used as the cookie's address. For
                            a stream: the connection's peer address (only
                            used for rate limiting under load) */
    size_t addr_len;     /* <= OVL_ADDR_MAX */
    bool stream;         /* came over a TCP connection, whose handshake has
                            already validated the source address: mac2 and
                            cookies do not apply */
};

/* ------------------------------------------------------------------------
 * Handshakes (internal layout; the caller only stores them)
 * ------------------------------------------------------------------------ */

enum ovl_hs_state {
    OVL_HS_NONE = 0,
    OVL_HS_INIT_SENT, /* initiator: waiting for RESP */
    OVL_HS_PENDING,   /* responder: INIT authenticated, awaiting a verdict */
};

struct ovl_hs {
    /* private */
    struct ovl_ik ik;
    enum ovl_hs_state state;
    uint8_t flags;                      /* INIT flags */
    uint32_t local_index;               /* initiator: our sender index */
    uint32_t remote_index;              /* responder: the INIT's sender */
    uint8_t remote_identity[OVL_ED_PK_LEN];
    uint8_t addr[OVL_ADDR_MAX];         /* responder: the INIT's source */
    uint8_t addr_len;
    bool stream;
    uint16_t init_len;                  /* responder: bounds the RESP */
};

/* ------------------------------------------------------------------------
 * Sessions (internal layout; the caller only stores them)
 * ------------------------------------------------------------------------ */

struct ovl_keypair {
    /* private */
    uint8_t send_key[OVL_AEAD_KEY_LEN];
    uint8_t recv_key[OVL_AEAD_KEY_LEN];
    uint64_t send_counter;
    struct ovl_replay replay;
    uint64_t birth;        /* now when derived */
    uint32_t local_index;  /* receivers put this in DATA to us */
    uint32_t remote_index; /* we put this in DATA to them */
    bool initiator;        /* derived as the handshake's initiator */
    bool valid;
};

enum { OVL_KP_SLOTS = 3, OVL_SLOT_HS = OVL_KP_SLOTS, OVL_SLOT_NONE = -1 };

struct ovl_session {
    /* private; read through the accessors below */
    struct ovl_endpoint *ep;
    bool initiator;            /* we connect and rekey */
    bool have_remote;
    uint8_t remote_identity[OVL_ED_PK_LEN];
    uint8_t remote_static[OVL_X_LEN];
    uint8_t remote_node_id[OVL_NODE_ID_LEN];
    uint8_t remote_mac1_key[32];   /* H("mac1----" || remote static) */
    uint8_t remote_cookie_key[32]; /* H("cookie--" || remote static) */

    struct ovl_keypair kp[OVL_KP_SLOTS];
    int8_t cur, prev, next;        /* indices into kp[] or OVL_SLOT_NONE */

    /* Initiator's handshake in flight. */
    struct ovl_hs hs;
    bool hs_is_rekey;
    uint64_t hs_attempt_start;     /* first INIT of this attempt */
    uint64_t hs_retry_at;          /* next retransmission */
    uint8_t init_msg[OVL_INIT_MAX]; /* last INIT sent, for a cookie retry */
    uint16_t init_len;
    bool cookie_retried;           /* the last INIT was re-sent with mac2 */
    uint8_t cookie[OVL_MAC_LEN];
    uint64_t cookie_birth;         /* OVL_NEVER: no cookie */
    uint8_t app[OVL_HS_APP_MAX];   /* first INIT's payload, repeated by
                                      retransmissions */
    uint16_t app_len;
    uint64_t wall_offset;          /* wall clock - now, mod 2^64 */
    uint64_t last_ts;              /* whitened ns of the last INIT */

    /* Where the peer is. */
    uint8_t addr[OVL_ADDR_MAX];
    uint8_t addr_len;
    bool stream;

    /* Timers (absolute ns, OVL_NEVER when off). */
    uint64_t last_sent;
    uint64_t last_recv;
    uint64_t keepalive_due;        /* passive keepalive / confirmation */
    uint64_t unanswered_since;     /* first DATA sent since last receive */
    uint64_t rekey_due;            /* a send crossed a rekey limit then */
    bool started;                  /* connected, or accepted once */
    bool dead;                     /* OVL_EV_EXPIRED was reported */
};

/* ------------------------------------------------------------------------
 * Endpoint
 * ------------------------------------------------------------------------ */

struct ovl_endpoint_config {
    const struct ovl_identity *identity; /* must outlive the endpoint */
    struct ovl_rng rng;        /* {NULL, NULL}: randombytes_buf */
    bool responder;            /* accept INIT and KEY_REQ (bridge, node) */
    uint32_t max_sessions;     /* 0: OVL_DEFAULT_MAX_SESSIONS */
    uint32_t max_peers;        /* INIT timestamp table; 0: default */
    uint32_t handshake_rate;   /* 0: default; UINT32_MAX: no built-in
                                  limit (only ovl_endpoint_set_under_load) */
    uint32_t handshake_burst;  /* 0: default */
    struct ovl_limits limits;  /* zero fields: defaults */
};

struct ovl_index_entry;
struct ovl_ts_entry;
struct ovl_bucket {
    uint64_t tokens; /* ns worth of credit */
    uint64_t last;   /* now at the last refill */
};

struct ovl_endpoint {
    /* read-only for the caller */
    struct ovl_counters counters;

    /* private */
    const struct ovl_identity *id;
    struct ovl_rng rng;
    struct ovl_limits limits;
    bool responder;
    uint8_t mac1_key[32];       /* H("mac1----" || our static) */
    uint8_t cookie_key[32];     /* H("cookie--" || our static) */
    uint8_t hash_key[16];       /* keys the table hashes (SipHash) */

    uint8_t cookie_secret[32];
    uint8_t cookie_secret_prev[32];
    uint64_t cookie_secret_birth; /* OVL_NEVER: none yet */
    bool cookie_prev_valid;

    bool force_under_load;
    uint64_t under_load_until;
    struct ovl_bucket hs_bucket;
    uint64_t hs_cost, hs_cap;   /* ns per INIT, bucket size in ns */
    struct ovl_bucket *addr_buckets; /* OVL_ADDR_BUCKETS */

    struct ovl_index_entry *idx;
    uint32_t idx_mask, idx_count, idx_max;
    struct ovl_ts_entry *ts;
    uint32_t ts_set_mask;

    struct {
        uint8_t id[OVL_REQUEST_ID_LEN];
        uint64_t expires;
        bool used;
    } keyreq[OVL_KEY_REQUESTS_MAX];
};

/* Fills @l with the default limits. */
void ovl_limits_default(struct ovl_limits *l);

/* Sets up @ep. Returns 0, -EINVAL (no identity, bad sizes), -ENOMEM or
 * -EIO (libsodium failed to initialise). */
int ovl_endpoint_init(struct ovl_endpoint *ep,
                      const struct ovl_endpoint_config *cfg);

/* Frees the tables and wipes the secrets. All sessions must have been
 * closed first. */
void ovl_endpoint_close(struct ovl_endpoint *ep);

/* Caller's load signal (e.g. the event loop is behind): while set, every
 * INIT over UDP needs a valid mac2, as when the built-in bucket runs dry. */
void ovl_endpoint_set_under_load(struct ovl_endpoint *ep, bool on);

/* Whether INITs currently need mac2 (either cause). */
bool ovl_endpoint_under_load(const struct ovl_endpoint *ep, uint64_t now);

/*
 * Processes one received secure-session message (classified
 * OVL_CLASS_SECURE). @out receives the payload or the reply and must hold
 * at least max(in->len, OVL_INIT_MAX) bytes; @hs receives a pending
 * responder handshake (may be NULL when the endpoint is not a responder;
 * it is overwritten, so it must not hold one still awaiting a verdict).
 *
 * Returns 0 when @rx says what to do (its kind is never OVL_RX_NONE then,
 * except for a cookie that was stored without a retry), -EBADMSG when the
 * message was dropped (reason in rx->drop, also counted), or -ENOBUFS /
 * -EINVAL for misuse. Never asserts on the message's content.
 */
int ovl_endpoint_recv(struct ovl_endpoint *ep, const struct ovl_datagram *in,
                      uint64_t now, struct ovl_hs *hs, uint8_t *out,
                      size_t out_cap, struct ovl_rx *rx);

/*
 * Builds a KEY_REQ (OVL_KEY_REQ_LEN bytes) to learn a responder's public
 * key before the first handshake when it was not pinned; the answer comes
 * back from ovl_endpoint_recv as OVL_RX_KEY_REPLY within REKEY_TIMEOUT.
 * The reply is not authenticated: trust on first use (docs/protocol.md).
 */
int ovl_endpoint_key_request(struct ovl_endpoint *ep, uint64_t now,
                             uint8_t *out, size_t cap, size_t *out_len);

/* ------------------------------------------------------------------------
 * Responder verdicts
 * ------------------------------------------------------------------------ */

/*
 * Accepts the pending handshake @hs into @s, which is either fresh from
 * ovl_session_init(s, ep, NULL) or the existing session of the same peer
 * (a rekey or a reconnect). Writes the RESP (with @app as its payload)
 * into @out; send it to ovl_session_addr(s). The new keys become usable
 * for sending when the initiator's first packet arrives
 * (OVL_EV_KEY_CONFIRMED). @hs is wiped in every case.
 *
 * Returns 0; -EMSGSIZE if the RESP would be larger than the INIT (never
 * amplify: an initiator expecting a large answer pads its INIT payload);
 * -EINVAL if @hs is not pending or @s belongs to another peer; -ENOBUFS;
 * -ENOSPC if the index table is full.
 */
int ovl_hs_responder_accept(struct ovl_hs *hs, struct ovl_session *s,
                            const uint8_t *app, size_t app_len, uint64_t now,
                            uint8_t *out, size_t cap, size_t *out_len);

/* Answers the pending handshake @hs with an authenticated REJECT carrying
 * @app (e.g. "wrong PIN"); no session is created. Send @out back to the
 * INIT's source. Same size rule and errors as accept. @hs is wiped. */
int ovl_hs_responder_reject(struct ovl_hs *hs, struct ovl_endpoint *ep,
                            const uint8_t *app, size_t app_len,
                            uint8_t *out, size_t cap, size_t *out_len);

/* Drops a pending handshake without answering; wipes it. */
void ovl_hs_discard(struct ovl_hs *hs);

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

/*
 * Sets up @s on @ep. With @remote_identity (the peer's Ed25519 key: from a
 * signed overlay record, a pinned key or a KEY_REPLY) the session is an
 * initiator: start it with ovl_session_connect. With NULL it is a
 * responder session, to be filled by ovl_hs_responder_accept.
 * Returns 0 or -EINVAL (the key is not a valid point).
 */
int ovl_session_init(struct ovl_session *s, struct ovl_endpoint *ep,
                     const uint8_t *remote_identity);

/*
 * Initiator: builds the first INIT, carrying @app (at most
 * OVL_HS_APP_MAX bytes, e.g. a join request), to be sent to @addr (or on
 * the stream). @wall_ns is the wall clock (ns since the Unix epoch) used
 * for the INIT's TAI64N timestamp; later INITs extrapolate it from `now`,
 * so the library never reads a clock. @out needs OVL_INIT_MIN + @app_len
 * bytes. Retransmissions and rekeys then come from ovl_session_timers.
 * Returns 0, -EINVAL (responder session, bad sizes), -ENOBUFS, -ENOSPC.
 */
int ovl_session_connect(struct ovl_session *s, const uint8_t *addr,
                        size_t addr_len, bool stream, const uint8_t *app,
                        size_t app_len, uint64_t wall_ns, uint64_t now,
                        uint8_t *out, size_t cap, size_t *out_len);

/*
 * Encrypts @len bytes (0: a keepalive) into a DATA message in @out
 * (@len + OVL_DATA_OVERHEAD bytes), to be sent to ovl_session_addr(s).
 * @plain may be @out + 16 (encryption in place), else must not overlap.
 * Returns 0; -ENOTCONN when there is no usable key yet (handshake under
 * way, responder awaiting confirmation) or any more (expired); -EMSGSIZE
 * beyond OVL_DATA_MAX_PLAIN; -ENOBUFS. Crossing a rekey limit schedules a
 * handshake: re-read ovl_session_next_timer after every call.
 */
int ovl_session_seal(struct ovl_session *s, const uint8_t *plain, size_t len,
                     uint64_t now, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Decrypts a DATA message addressed to one of @s's keypairs (the endpoint
 * does this itself after looking the index up; this entry point serves
 * callers that already know the session, e.g. one TCP connection per
 * session). Same contract as ovl_endpoint_recv for DATA.
 */
int ovl_session_open(struct ovl_session *s, const struct ovl_datagram *in,
                     uint64_t now, uint8_t *out, size_t out_cap,
                     struct ovl_rx *rx);

/*
 * Runs the session's timers at @now: expiry of old keys, handshake
 * retransmission and giving up, rekeying (time, messages, unanswered
 * data), keepalives. Writes at most one datagram to @out (*out_len 0 when
 * none; @cap >= OVL_INIT_MAX) and ORs events into *events (OVL_EV_*).
 * Call again while it produces datagrams (at most a few per deadline).
 * Returns 0 or -ENOBUFS.
 */
int ovl_session_timers(struct ovl_session *s, uint64_t now, uint8_t *out,
                       size_t cap, size_t *out_len, uint32_t *events);

/* The earliest time ovl_session_timers has something to do (OVL_NEVER if
 * nothing). */
uint64_t ovl_session_next_timer(const struct ovl_session *s);

/* The peer's current address (changes on OVL_EV_ADDR_CHANGED). */
const uint8_t *ovl_session_addr(const struct ovl_session *s, size_t *len);

/* The peer's identity (NULL before a responder session is accepted). */
const uint8_t *ovl_session_remote_identity(const struct ovl_session *s);

/* Whether ovl_session_seal would succeed now. */
bool ovl_session_can_send(const struct ovl_session *s, uint64_t now);

/* Unregisters @s from its endpoint and wipes it. */
void ovl_session_close(struct ovl_session *s);

#endif /* OVL_SECURE_H */
