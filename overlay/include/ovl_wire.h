/*
 * ovl_wire.h: every wire format of the Chorus secure-session layer, in one
 * place (as WireGuard's messages.h). docs/protocol.md describes the same
 * layouts in prose, with the state machines that use them.
 *
 * Conventions
 * -----------
 *  - Every struct here is a byte-exact wire image made only of uint8_t
 *    fields and arrays, so it has alignment 1 and no padding, and a pointer
 *    to it may be laid over any received buffer. Multi-byte integers are
 *    byte arrays whose suffix gives the byte order (_le: little endian as in
 *    WireGuard; _be: big endian, network order) and are read and written
 *    with the ovl_load/ovl_store helpers below, never by casting.
 *  - Each struct has a _Static_assert on its size, and each size also
 *    exists as an enum constant that the parsers use for bounds checks.
 *  - The first byte of every secure-session message lies in 0x50..0x5F:
 *    high nibble 0x5 marks "Chorus secure session", the low nibble is the
 *    message type. The second byte is the protocol version. This keeps the
 *    messages apart from STUN (first byte 0x00..0x03, RFC 8489) and RTP/RTCP
 *    (0x80..0xBF, RFC 3550), following RFC 7983's first-byte demultiplexing,
 *    so one UDP port can carry all three (see ovl_wire_classify).
 *  - Over TCP the same messages travel with a 2-byte big-endian length
 *    prefix (RFC 4571 framing); see ovl_stream.h.
 *
 * Thread: any. Everything here is pure (no state).
 */
#ifndef OVL_WIRE_H
#define OVL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message types: the first byte of a message. */
enum ovl_msg_type {
    OVL_MSG_FIRST_BYTE_MIN = 0x50, /* the range owned by secure sessions */
    OVL_MSG_FIRST_BYTE_MAX = 0x5F,
    OVL_MSG_INIT = 0x51,      /* handshake initiation (Noise IK message 1) */
    OVL_MSG_RESP = 0x52,      /* handshake response (Noise IK message 2) */
    OVL_MSG_COOKIE = 0x53,    /* cookie reply: "retry with mac2" */
    OVL_MSG_DATA = 0x54,      /* transport data; empty payload = keepalive */
    OVL_MSG_KEY_REQ = 0x55,   /* unauthenticated "what is your public key?" */
    OVL_MSG_KEY_REPLY = 0x56, /* answer to KEY_REQ (trust on first use) */
};

enum {
    OVL_WIRE_VERSION = 1, /* the second byte of every message */

    /* Primitive sizes. */
    OVL_KEY_LEN = 32,        /* X25519 / Ed25519 public key, AEAD key */
    OVL_TAG_LEN = 16,        /* Poly1305 tag */
    OVL_MAC_LEN = 16,        /* mac1, mac2, cookie: keyed BLAKE2b-128 */
    OVL_TAI64N_LEN = 12,     /* TAI64N timestamp */
    OVL_XNONCE_LEN = 24,     /* XChaCha20-Poly1305 nonce */
    OVL_REQUEST_ID_LEN = 8,  /* KEY_REQ/KEY_REPLY correlation id */

    /* Largest opaque application payload a handshake message may carry.
     * INIT then stays within 1208 bytes, under the 1232 bytes of UDP
     * payload that the IPv6 minimum MTU (1280) guarantees. */
    OVL_HS_APP_MAX = 1024,

    /* Largest message of any type: the 16-bit TCP length prefix bounds it. */
    OVL_WIRE_MAX_MSG = 65535,
};

/* Initiator flags (struct ovl_wire_init_plain.flags). */
enum {
    OVL_INIT_FLAG_REKEY = 0x01, /* initiator already holds a session with
                                   this responder; this is a key refresh */
    OVL_INIT_FLAGS_KNOWN = 0x01,
};

/* Responder verdicts (struct ovl_wire_resp_plain.status). */
enum {
    OVL_RESP_ACCEPT = 0,
    OVL_RESP_REJECT = 1,
};

/* ------------------------------------------------------------------------
 * Layouts
 * ------------------------------------------------------------------------ */

/* Common 4-byte header of every message. reserved must be zero. */
struct ovl_wire_hdr {
    uint8_t type;        /* enum ovl_msg_type */
    uint8_t version;     /* OVL_WIRE_VERSION */
    uint8_t reserved[2]; /* zero; a receiver rejects anything else */
};
_Static_assert(sizeof(struct ovl_wire_hdr) == 4, "hdr size");

/* Trailer of INIT and RESP. mac1 covers every byte before it, mac2 every
 * byte before it (mac1 included). */
struct ovl_wire_macs {
    uint8_t mac1[OVL_MAC_LEN]; /* MAC(H("mac1----" || receiver static), msg) */
    uint8_t mac2[OVL_MAC_LEN]; /* MAC(cookie, msg) or zero */
};
_Static_assert(sizeof(struct ovl_wire_macs) == 32, "macs size");

/*
 * INIT: initiator -> responder. Layout:
 *   ovl_wire_init_head                       88 bytes
 *   AEAD(ovl_wire_init_plain || app payload)  48 + app + 16 bytes
 *   ovl_wire_macs                            32 bytes
 * The three parts after the header and sender index are exactly Noise IK's
 * message 1: e, encrypted s, encrypted payload.
 */
struct ovl_wire_init_head {
    struct ovl_wire_hdr hdr;
    uint8_t sender_le[4];                   /* initiator's session index */
    uint8_t ephemeral[OVL_KEY_LEN];         /* e (clear) */
    uint8_t enc_static[OVL_KEY_LEN + OVL_TAG_LEN]; /* AEAD(s) */
};
_Static_assert(sizeof(struct ovl_wire_init_head) == 88, "init head size");

/* Plaintext that starts INIT's encrypted payload. */
struct ovl_wire_init_plain {
    uint8_t tai64n[OVL_TAI64N_LEN]; /* strictly increasing per initiator */
    uint8_t identity[OVL_KEY_LEN];  /* initiator's Ed25519 public key; must
                                       convert to the Noise static s */
    uint8_t flags;                  /* OVL_INIT_FLAG_* */
    uint8_t reserved[3];            /* zero */
};
_Static_assert(sizeof(struct ovl_wire_init_plain) == 48, "init plain size");

/*
 * RESP: responder -> initiator. Layout:
 *   ovl_wire_resp_head                        40 bytes
 *   AEAD(ovl_wire_resp_plain || app payload)   8 + app + 16 bytes
 *   ovl_wire_macs                             32 bytes
 * After the header and receiver index this is Noise IK's message 2:
 * e, encrypted payload. The responder's own index travels encrypted.
 */
struct ovl_wire_resp_head {
    struct ovl_wire_hdr hdr;
    uint8_t receiver_le[4];         /* the INIT's sender index */
    uint8_t ephemeral[OVL_KEY_LEN]; /* e (clear) */
};
_Static_assert(sizeof(struct ovl_wire_resp_head) == 40, "resp head size");

struct ovl_wire_resp_plain {
    uint8_t status;       /* OVL_RESP_ACCEPT or OVL_RESP_REJECT */
    uint8_t reserved[3];  /* zero */
    uint8_t sender_le[4]; /* responder's session index (0 when rejecting) */
};
_Static_assert(sizeof(struct ovl_wire_resp_plain) == 8, "resp plain size");

/* COOKIE: responder -> initiator, in answer to an INIT while under load. */
struct ovl_wire_cookie {
    struct ovl_wire_hdr hdr;
    uint8_t receiver_le[4];          /* the INIT's sender index */
    uint8_t nonce[OVL_XNONCE_LEN];   /* random */
    uint8_t enc_cookie[OVL_MAC_LEN + OVL_TAG_LEN]; /* XAEAD(cookie), AD=mac1 */
};
_Static_assert(sizeof(struct ovl_wire_cookie) == 64, "cookie size");

/* DATA: either way. The 16-byte head is the AEAD's associated data; the
 * nonce is 4 zero bytes then counter_le (Noise's ChaChaPoly nonce). */
struct ovl_wire_data_head {
    struct ovl_wire_hdr hdr;
    uint8_t receiver_le[4]; /* the receiver's session index */
    uint8_t counter_le[8];  /* sender's message counter, from 0 */
};
_Static_assert(sizeof(struct ovl_wire_data_head) == 16, "data head size");

/* KEY_REQ: anyone -> responder. Padded so that the reply is smaller. */
struct ovl_wire_key_req {
    struct ovl_wire_hdr hdr;
    uint8_t request_id[OVL_REQUEST_ID_LEN]; /* random, echoed back */
    uint8_t padding[52];                    /* zero */
};
_Static_assert(sizeof(struct ovl_wire_key_req) == 64, "key req size");

/* KEY_REPLY: responder -> requester. Not authenticated (see protocol.md). */
struct ovl_wire_key_reply {
    struct ovl_wire_hdr hdr;
    uint8_t request_id[OVL_REQUEST_ID_LEN];
    uint8_t identity[OVL_KEY_LEN]; /* responder's Ed25519 public key */
};
_Static_assert(sizeof(struct ovl_wire_key_reply) == 44, "key reply size");

/* Derived sizes used by every bounds check. */
enum {
    OVL_INIT_MIN = (int)(sizeof(struct ovl_wire_init_head) +
                         sizeof(struct ovl_wire_init_plain) + OVL_TAG_LEN +
                         sizeof(struct ovl_wire_macs)),        /* 184 */
    OVL_INIT_MAX = OVL_INIT_MIN + OVL_HS_APP_MAX,               /* 1208 */
    OVL_RESP_MIN = (int)(sizeof(struct ovl_wire_resp_head) +
                         sizeof(struct ovl_wire_resp_plain) + OVL_TAG_LEN +
                         sizeof(struct ovl_wire_macs)),        /* 96 */
    OVL_RESP_MAX = OVL_RESP_MIN + OVL_HS_APP_MAX,               /* 1120 */
    OVL_COOKIE_LEN = (int)sizeof(struct ovl_wire_cookie),      /* 64 */
    OVL_DATA_OVERHEAD = (int)sizeof(struct ovl_wire_data_head) + OVL_TAG_LEN,
    OVL_DATA_MIN = OVL_DATA_OVERHEAD,                           /* 32 */
    OVL_DATA_MAX_PLAIN = OVL_WIRE_MAX_MSG - OVL_DATA_OVERHEAD,  /* 65503 */
    OVL_KEY_REQ_LEN = (int)sizeof(struct ovl_wire_key_req),    /* 64 */
    OVL_KEY_REPLY_LEN = (int)sizeof(struct ovl_wire_key_reply), /* 44 */
};
_Static_assert(OVL_INIT_MIN == 184 && OVL_INIT_MAX == 1208, "init bounds");
_Static_assert(OVL_RESP_MIN == 96, "resp bounds");
/* Anti-amplification: a reply is never larger than what triggered it. */
_Static_assert(OVL_COOKIE_LEN < OVL_INIT_MIN, "cookie reply amplifies");
_Static_assert(OVL_KEY_REPLY_LEN < OVL_KEY_REQ_LEN, "key reply amplifies");
_Static_assert(OVL_RESP_MIN < OVL_INIT_MIN, "resp cannot fit under init");

/* ------------------------------------------------------------------------
 * Byte-order helpers
 * ------------------------------------------------------------------------ */

static inline uint32_t ovl_load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void ovl_store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint64_t ovl_load_le64(const uint8_t *p)
{
    return (uint64_t)ovl_load_le32(p) | (uint64_t)ovl_load_le32(p + 4) << 32;
}

static inline void ovl_store_le64(uint8_t *p, uint64_t v)
{
    ovl_store_le32(p, (uint32_t)v);
    ovl_store_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t ovl_load_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline void ovl_store_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* ------------------------------------------------------------------------
 * Demultiplexing and header parsing
 * ------------------------------------------------------------------------ */

enum ovl_wire_class {
    OVL_CLASS_UNKNOWN = 0,
    OVL_CLASS_STUN,   /* RFC 8489 message (magic cookie checked) */
    OVL_CLASS_RTP,    /* RTP or RTCP (version 2: first byte 0x80..0xBF) */
    OVL_CLASS_SECURE, /* first byte 0x50..0x5F: hand to ovl_endpoint_recv */
};

/*
 * Tells which protocol a datagram received on a shared port belongs to,
 * from its first bytes only (RFC 7983's idea):
 *  - STUN: len >= 20, first two bits zero (first byte 0..3), the message
 *    length (bytes 2-3) a multiple of 4, and bytes 4-7 the magic cookie
 *    0x2112A442;
 *  - RTP/RTCP: len >= 8 and first byte 128..191 (version 2);
 *  - SECURE: len >= 4 and first byte 0x50..0x5F;
 *  - anything else, and NULL or empty input: UNKNOWN.
 * It does not validate the message: that is the parser's job.
 */
enum ovl_wire_class ovl_wire_classify(const uint8_t *buf, size_t len);

/* Why a message was dropped. Every parser and check reports exactly one of
 * these, and the endpoint counts each (struct ovl_counters.drops). */
enum ovl_drop {
    OVL_DROP_NONE = 0,
    OVL_DROP_TOO_SHORT,        /* shorter than its type's layout */
    OVL_DROP_TOO_LONG,         /* longer than its type allows */
    OVL_DROP_BAD_TYPE,         /* first byte not a known message type */
    OVL_DROP_BAD_VERSION,      /* second byte not OVL_WIRE_VERSION */
    OVL_DROP_BAD_HEADER,       /* non-zero reserved bits or padding, bad flags */
    OVL_DROP_BAD_MAC1,         /* cheap check failed: no crypto was done */
    OVL_DROP_MAC2_NEEDED,      /* under load without a valid cookie: a COOKIE
                                  reply was sent instead */
    OVL_DROP_BAD_MAC2,         /* mac2 present but wrong (a COOKIE reply was
                                  sent), or non-zero where it must be zero */
    OVL_DROP_RATE_LIMITED,     /* per-source or per-peer limit */
    OVL_DROP_BAD_KEY,          /* X25519 gave the all-zero (low order) result */
    OVL_DROP_DECRYPT,          /* AEAD authentication failed */
    OVL_DROP_IDENTITY,         /* Ed25519 identity does not match Noise s */
    OVL_DROP_STALE_TIMESTAMP,  /* replayed or older INIT */
    OVL_DROP_REPLAY,           /* DATA counter already seen or too old */
    OVL_DROP_UNKNOWN_INDEX,    /* receiver index matches nothing */
    OVL_DROP_KEY_EXPIRED,      /* keypair past REJECT_AFTER_TIME/MESSAGES */
    OVL_DROP_UNEXPECTED,       /* valid message not wanted in this state */
    OVL_DROP_NO_SPACE,         /* table full or caller buffer too small */
    OVL_DROP__COUNT
};

/* A short stable name for @d ("bad_mac1", ...), for logs and metrics. */
const char *ovl_drop_name(enum ovl_drop d);

/*
 * Checks the common header of a secure-session message: length at least 4,
 * a known type, version OVL_WIRE_VERSION, reserved bytes zero, and the
 * length within the fixed bounds of that type. On success returns 0 and
 * stores the type in *type; otherwise returns -EBADMSG and stores the
 * reason in *drop. Never reads past @len.
 */
int ovl_wire_check(const uint8_t *buf, size_t len, enum ovl_msg_type *type,
                   enum ovl_drop *drop);

/* Writes a common header for @type. */
void ovl_wire_put_hdr(uint8_t *buf, enum ovl_msg_type type);

#endif /* OVL_WIRE_H */
