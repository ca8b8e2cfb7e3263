/*
 * ovl_msg.h: every wire format of the Chorus overlay, in one place (as
 * ovl_wire.h is for the secure-session layer): the messages that travel
 * inside secure-session DATA payloads (and handshake payloads), the
 * contact and address forms they carry, the layouts of signed records and
 * authority certificates (their API is ovl_record.h), the host-cache file,
 * and the simulation-only plaintext frame. docs/protocol.md part 2
 * describes the same layouts in prose, with the state machines.
 *
 * Conventions (as ovl_wire.h)
 * ---------------------------
 *  - Every struct named ovl_*w_* is a byte-exact wire image made only of
 *    uint8_t fields and arrays (alignment 1, no padding), with a
 *    _Static_assert on its size. Multi-byte integers carry their byte order
 *    in the suffix (_le little endian, _be big endian) and are read with
 *    ovl_load_* / ovl_store_* (ovl_wire.h), never by casting.
 *  - Every overlay message starts with the 8-byte ovl_msgw_hdr: version,
 *    type, flags, reserved, request id. A receiver rejects (counts and
 *    drops, never asserts) another version, an unknown type, flag bits
 *    unknown for that type, non-zero reserved bytes, lengths outside the
 *    type's bounds, bad counts, bad addresses and trailing bytes.
 *  - Requests carry a random non-zero request id; the answer echoes it.
 *    NOTIFY without a request has id 0.
 *
 * Decoding is zero-copy for records: struct ovl_msg points into the
 * buffer it was decoded from (valid as long as that buffer).
 *
 * Thread: any. Everything here is pure.
 */
#ifndef OVL_MSG_H
#define OVL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_identity.h"
#include "ovl_wire.h"

/* ------------------------------------------------------------------------
 * Constants
 * ------------------------------------------------------------------------ */

enum {
    OVL_MSG_VERSION = 1,     /* byte 0 of every overlay message */
    OVL_MSG_HDR_LEN = 8,
    OVL_MSG_MAX = 1200,      /* largest overlay message: one UDP datagram
                                under the IPv6 minimum MTU with the DATA
                                overhead (1200 + 32 <= 1232) */
    OVL_NAME_MAX = 64,       /* handle or room name, bytes */
    OVL_CONTACTS_MAX = 16,   /* contacts in NODES / HOSTCACHE / VALUE */
    OVL_LOGIN_ERR_CONTACTS_MAX = 4, /* alternatives in a LOGIN_ERR */
    OVL_KEY_LEN_DHT = 32,    /* DHT keys and node ids: 256 bits */
    OVL_RECORD_MAX = 900,    /* largest encoded record */
    OVL_PRESENCE_ADDRS_MAX = 4,
};

/* Message types: byte 1 of the header. */
enum ovl_mtype {
    OVL_M_PING = 0x01,          /* are you there?                      */
    OVL_M_PONG = 0x02,          /* yes; and this is where I see you    */
    OVL_M_ERROR = 0x03,         /* generic refusal of a request        */
    OVL_M_LOGIN = 0x10,         /* peer -> supernode: attach me        */
    OVL_M_LOGIN_OK = 0x11,
    OVL_M_LOGIN_ERR = 0x12,
    OVL_M_HOSTCACHE_GET = 0x20, /* give me supernode contacts          */
    OVL_M_HOSTCACHE = 0x21,
    OVL_M_FIND_NODE = 0x30,     /* DHT: closest nodes to a target      */
    OVL_M_NODES = 0x31,
    OVL_M_STORE = 0x40,         /* DHT: keep this record (or: publish) */
    OVL_M_STORE_OK = 0x41,
    OVL_M_FIND_VALUE = 0x50,    /* DHT: record for a key (or: search)  */
    OVL_M_VALUE = 0x51,
    OVL_M_SUBSCRIBE = 0x60,     /* tell me when the record changes     */
    OVL_M_NOTIFY = 0x61,
    OVL_M_REACH_PROBE = 0x70,   /* supernode eligibility: dial me      */
    OVL_M_REACH_OK = 0x71,
};

/* Header flags. Bit 7 is common to all requests; the others per type. */
enum {
    OVL_MF_DHT_MEMBER = 0x80, /* sender is a supernode (DHT member): the
                                 receiver may add it to its routing table
                                 at the source address of the message */
    OVL_MF_LOGIN_FALLBACK = 0x01, /* LOGIN: standby session, publish nothing */
    OVL_MF_LOGIN_HAS_CERT = 0x02, /* LOGIN: an authority certificate follows */
    OVL_MF_SEARCH = 0x01,     /* FIND_VALUE/STORE/SUBSCRIBE from a peer to
                                 its supernode: do the DHT work for me */
    OVL_MF_UNSUBSCRIBE = 0x02, /* SUBSCRIBE: cancel */
    OVL_MF_REACH_RELAY = 0x01, /* REACH_PROBE: from a supernode to the
                                  supernode that dials (second hop) */
};

/* LOGIN_ERR and ERROR codes. */
enum ovl_merr {
    OVL_MERR_NONE = 0,
    OVL_MERR_NOT_SUPERNODE = 1,  /* I do not accept logins / DHT requests */
    OVL_MERR_FULL = 2,           /* too many peers: try the contacts given */
    OVL_MERR_BAD_HANDLE = 3,     /* handle not a valid name */
    OVL_MERR_NOT_CERTIFIED = 4,  /* authority configured, no valid cert */
    OVL_MERR_CERT_MISMATCH = 5,  /* cert for another handle or identity */
    OVL_MERR_CERT_EXPIRED = 6,
    OVL_MERR_NOT_LOGGED_IN = 7,  /* request needs an attached peer */
    OVL_MERR_BAD_REQUEST = 8,    /* understood but not acceptable */
    OVL_MERR_BUSY = 9,           /* resource limit, try later */
    OVL_MERR__MAX = 9,
};

/* STORE_OK status. */
enum ovl_store_status {
    OVL_STORE_STORED = 0,    /* stored (or replaced an older version) */
    OVL_STORE_DUPLICATE = 1, /* already had exactly this version */
    OVL_STORE_OLDER = 2,     /* had a newer version (seq in STORE_OK) */
    OVL_STORE_INVALID = 3,   /* signature, layout or owner check failed */
    OVL_STORE_EXPIRED = 4,
    OVL_STORE_UNAUTHORIZED = 5, /* authority configured, cert missing/bad */
    OVL_STORE_FULL = 6,
    OVL_STORE_FAILED = 7,    /* SEARCH: no replica could be stored */
    OVL_STORE_ELSEWHERE = 8, /* I know k live nodes closer to the key: not
                                mine to keep */
    OVL_STORE__MAX = 8,
};

/* VALUE status. */
enum ovl_value_status {
    OVL_VALUE_FOUND = 0,     /* a record follows */
    OVL_VALUE_NOT_FOUND = 1, /* direct: contacts may follow; search:
                                the DHT has no record (unknown) */
    OVL_VALUE_UNCHANGED = 2, /* the requester's known_seq is current */
    OVL_VALUE__MAX = 2,
};

/* REACH_OK result bits. */
enum {
    OVL_REACH_UDP = 0x01,
    OVL_REACH_TCP = 0x02,
    OVL_REACH_KNOWN = 0x03,
};

/* Roles on the wire (LOGIN, presence). "auto" is a local policy, not a
 * role: an auto node is a peer until it is promoted. */
enum ovl_role {
    OVL_ROLE_PEER = 0,
    OVL_ROLE_SUPERNODE = 1,
    OVL_ROLE__MAX = 1,
};

/* Contact flags. */
enum {
    OVL_CF_TCP443 = 0x01,   /* also listens on TCP port 443 */
    OVL_CF_KNOWN = 0x01,
};

/* Address families in the wire form. */
enum {
    OVL_AF_NONE = 0,
    OVL_AF_INET = 4,
    OVL_AF_INET6 = 6,
};

/* ------------------------------------------------------------------------
 * Wire layouts
 * ------------------------------------------------------------------------ */

/* Common header of every overlay message. */
struct ovl_msgw_hdr {
    uint8_t version;    /* OVL_MSG_VERSION */
    uint8_t type;       /* enum ovl_mtype */
    uint8_t flags;      /* OVL_MF_*; bits unknown for the type must be 0 */
    uint8_t reserved;   /* zero */
    uint8_t rid_le[4];  /* request id; the answer echoes it */
};
_Static_assert(sizeof(struct ovl_msgw_hdr) == OVL_MSG_HDR_LEN, "hdr");

/* A transport address. IPv4 uses the first 4 bytes of ip, the rest zero. */
struct ovl_msgw_addr {
    uint8_t family;     /* OVL_AF_INET or OVL_AF_INET6 (NONE where optional) */
    uint8_t reserved;   /* zero */
    uint8_t port_be[2]; /* non-zero unless family is NONE */
    uint8_t ip[16];
};
_Static_assert(sizeof(struct ovl_msgw_addr) == 20, "addr");

/* A supernode (or probe target) contact: who and where. The node id is
 * BLAKE2b-256 of the identity and is never sent. */
struct ovl_msgw_contact {
    uint8_t identity[32];       /* Ed25519 public key */
    struct ovl_msgw_addr udp;   /* UDP address */
    uint8_t tcp_port_be[2];     /* TCP port on the same IP (0: none) */
    uint8_t flags;              /* OVL_CF_* */
    uint8_t reserved;           /* zero */
};
_Static_assert(sizeof(struct ovl_msgw_contact) == 56, "contact");

/* PONG, LOGIN_OK: where the responder sees the requester. */
struct ovl_msgw_pong {
    struct ovl_msgw_addr observed;
};
_Static_assert(sizeof(struct ovl_msgw_pong) == 20, "pong");

/* ERROR */
struct ovl_msgw_error {
    uint8_t code_be[2]; /* enum ovl_merr */
    uint8_t reserved[2];
};
_Static_assert(sizeof(struct ovl_msgw_error) == 4, "error");

/* LOGIN: fixed part, then handle[handle_len], then (flag HAS_CERT) an
 * authority certificate (struct ovl_certw). handle_len 0: anonymous. */
struct ovl_msgw_login {
    uint8_t handle_len;   /* 0..OVL_NAME_MAX */
    uint8_t role;         /* the requester's current role (enum ovl_role) */
    uint8_t reserved[2];
};
_Static_assert(sizeof(struct ovl_msgw_login) == 4, "login");

struct ovl_msgw_login_ok {
    struct ovl_msgw_addr observed;
    uint8_t keepalive_s_be[2]; /* send a PING at least this often */
    uint8_t reserved[2];
};
_Static_assert(sizeof(struct ovl_msgw_login_ok) == 24, "login ok");

/* LOGIN_ERR: fixed part then count contacts (alternatives). */
struct ovl_msgw_login_err {
    uint8_t code_be[2];
    uint8_t count;        /* 0..OVL_LOGIN_ERR_CONTACTS_MAX */
    uint8_t reserved;
};
_Static_assert(sizeof(struct ovl_msgw_login_err) == 4, "login err");

struct ovl_msgw_hostcache_get {
    uint8_t max;          /* 1..OVL_CONTACTS_MAX */
    uint8_t reserved[3];
};
_Static_assert(sizeof(struct ovl_msgw_hostcache_get) == 4, "hc get");

/* HOSTCACHE and NODES: fixed part then count contacts. */
struct ovl_msgw_contacts {
    uint8_t count;        /* 0..OVL_CONTACTS_MAX */
    uint8_t reserved[3];
};
_Static_assert(sizeof(struct ovl_msgw_contacts) == 4, "contacts");

struct ovl_msgw_find_node {
    uint8_t target[OVL_KEY_LEN_DHT];
};
_Static_assert(sizeof(struct ovl_msgw_find_node) == 32, "find node");

/* STORE: fixed part then the record (record_len bytes). */
struct ovl_msgw_store {
    uint8_t record_len_be[2]; /* 1..OVL_RECORD_MAX */
    uint8_t reserved[2];
};
_Static_assert(sizeof(struct ovl_msgw_store) == 4, "store");

struct ovl_msgw_store_ok {
    uint8_t status;           /* enum ovl_store_status */
    uint8_t reserved;
    uint8_t replicas_be[2];   /* SEARCH: replicas that took it */
    uint8_t seq_le[8];        /* the version the responder now holds */
};
_Static_assert(sizeof(struct ovl_msgw_store_ok) == 12, "store ok");

struct ovl_msgw_find_value {
    uint8_t key[OVL_KEY_LEN_DHT];
    uint8_t known_seq_le[8];  /* 0: none; else answer UNCHANGED when the
                                 holder's version is not newer */
};
_Static_assert(sizeof(struct ovl_msgw_find_value) == 40, "find value");

/* VALUE: fixed part, then record_len bytes of record, then count
 * contacts. A FOUND answer has a record; the others have none. */
struct ovl_msgw_value {
    uint8_t status;           /* enum ovl_value_status */
    uint8_t count;            /* contacts that follow the record */
    uint8_t record_len_be[2];
    uint8_t rounds;           /* SEARCH answers: rounds the search took */
    uint8_t reserved;
    uint8_t messages_be[2];   /* SEARCH answers: queries it sent */
};
_Static_assert(sizeof(struct ovl_msgw_value) == 8, "value");

struct ovl_msgw_subscribe {
    uint8_t key[OVL_KEY_LEN_DHT];
    uint8_t ttl_s_be[2];      /* lifetime of the subscription, 1..3600 */
    uint8_t reserved[2];
};
_Static_assert(sizeof(struct ovl_msgw_subscribe) == 36, "subscribe");

/* NOTIFY: fixed part then the record (record_len 0: none known). */
struct ovl_msgw_notify {
    uint8_t key[OVL_KEY_LEN_DHT];
    uint8_t record_len_be[2];
    uint8_t reserved[2];
};
_Static_assert(sizeof(struct ovl_msgw_notify) == 36, "notify");

/* REACH_PROBE: the node to dial. REACH_OK: the same contact and what
 * worked. */
struct ovl_msgw_reach {
    struct ovl_msgw_contact target;
    uint8_t result;           /* REACH_OK: OVL_REACH_*; PROBE: zero */
    uint8_t reserved[3];
};
_Static_assert(sizeof(struct ovl_msgw_reach) == 60, "reach");

/* ------------------------------------------------------------------------
 * Records and certificates (API: ovl_record.h)
 * ------------------------------------------------------------------------ */

enum ovl_rtype {
    OVL_R_PRESENCE = 1, /* handle -> node, addresses, supernode: online */
    OVL_R_LASTSEEN = 2, /* handle -> offline since T */
    OVL_R_ROOM = 3,     /* room name -> bridge */
};

enum {
    OVL_RF_HAS_CERT = 0x01, /* an authority certificate follows the body */
    OVL_RF_ATTESTED = 0x02, /* LASTSEEN signed by the supernode named in the
                               embedded presence record, not the owner */
    OVL_RF_KNOWN = 0x03,
};

/*
 * A record: head, name[name_len], body[body_len], certificate (if
 * HAS_CERT), signature. The signature (Ed25519) covers the context string
 * "chorus record v1" (16 bytes) followed by every byte before it; the
 * signer is the owner, or for an ATTESTED LASTSEEN the supernode named in
 * the embedded presence record.
 */
struct ovl_recw_head {
    uint8_t version;       /* OVL_MSG_VERSION */
    uint8_t type;          /* enum ovl_rtype */
    uint8_t flags;         /* OVL_RF_* */
    uint8_t name_len;      /* 1..OVL_NAME_MAX */
    uint8_t seq_le[8];     /* newer wins; non-zero */
    uint8_t issued_le[8];  /* Unix seconds */
    uint8_t expires_le[8]; /* Unix seconds; > issued */
    uint8_t owner[32];     /* Ed25519 key of the handle's node / the bridge */
    uint8_t body_len_le[2];
    uint8_t reserved[2];   /* zero */
};
_Static_assert(sizeof(struct ovl_recw_head) == 64, "record head");

/* PRESENCE body: fixed part then naddr addresses. */
struct ovl_recw_presence {
    struct ovl_msgw_contact supernode; /* where the owner is attached */
    uint8_t naddr;                      /* 0..OVL_PRESENCE_ADDRS_MAX */
    uint8_t role;                       /* owner's role (enum ovl_role) */
    uint8_t reserved[2];
};
_Static_assert(sizeof(struct ovl_recw_presence) == 60, "presence body");

/* LASTSEEN body; ATTESTED adds the presence record it ends. */
struct ovl_recw_lastseen {
    uint8_t last_seen_le[8];     /* Unix seconds */
    uint8_t presence_len_le[2];  /* ATTESTED: length of the embedded
                                    presence record that follows; else 0 */
    uint8_t reserved[2];
};
_Static_assert(sizeof(struct ovl_recw_lastseen) == 12, "lastseen body");

/* ROOM body: fixed part then naddr addresses of the bridge. */
struct ovl_recw_room {
    uint8_t naddr;               /* 1..OVL_PRESENCE_ADDRS_MAX */
    uint8_t reserved[3];
    uint8_t tcp_port_be[2];      /* bridge's TCP media port (0: none) */
    uint8_t reserved2[2];
};
_Static_assert(sizeof(struct ovl_recw_room) == 8, "room body");

enum ovl_cert_kind {
    OVL_CERT_HANDLE = 1,
    OVL_CERT_ROOM = 2,
};

/*
 * Authority certificate: the login authority (an Ed25519 key that
 * supernodes are configured with) says "subject may use name until
 * not_after". The signature covers "chorus cert v1\0\0" (16 bytes) then
 * bytes 0..147.
 */
struct ovl_certw {
    uint8_t version;          /* OVL_MSG_VERSION */
    uint8_t kind;             /* enum ovl_cert_kind */
    uint8_t name_len;         /* 1..OVL_NAME_MAX */
    uint8_t reserved;         /* zero */
    uint8_t name[OVL_NAME_MAX]; /* zero-padded */
    uint8_t subject[32];      /* Ed25519 key of the holder */
    uint8_t not_before_le[8]; /* Unix seconds */
    uint8_t not_after_le[8];
    uint8_t authority[32];    /* the signer's key (must equal the
                                 configured authority) */
    uint8_t sig[64];
};
_Static_assert(sizeof(struct ovl_certw) == 212, "cert");

enum {
    OVL_SIG_LEN = 64,
    OVL_CERT_LEN = (int)sizeof(struct ovl_certw),
    OVL_CERT_SIGNED_LEN = OVL_CERT_LEN - OVL_SIG_LEN,
    OVL_RECORD_MIN = (int)sizeof(struct ovl_recw_head) + 1 + OVL_SIG_LEN,
};

/* ------------------------------------------------------------------------
 * Host-cache file and the simulation-only plaintext frame
 * ------------------------------------------------------------------------ */

#define OVL_HOSTCACHE_MAGIC "CHORUS-HOSTCACHE"

/* File: head then count entries. */
struct ovl_hcw_head {
    uint8_t magic[16];        /* OVL_HOSTCACHE_MAGIC, no NUL */
    uint8_t version;          /* OVL_MSG_VERSION */
    uint8_t reserved;
    uint8_t count_le[2];      /* 0..OVL_HOSTCACHE_MAX */
};
_Static_assert(sizeof(struct ovl_hcw_head) == 20, "hostcache head");

struct ovl_hcw_entry {
    struct ovl_msgw_contact contact;
    uint8_t last_seen_le[8];  /* Unix seconds */
    uint8_t fails;            /* consecutive failed attempts */
    uint8_t reserved[3];
};
_Static_assert(sizeof(struct ovl_hcw_entry) == 68, "hostcache entry");

/*
 * The plaintext frame replaces a secure session in simulations that turn
 * cryptography off for scale (ovl_node_config.insecure_plaintext): first
 * byte 0x5F (reserved in the secure-session range), version, two zero
 * bytes, the sender's claimed Ed25519 key, then one overlay message. It is
 * NOT authenticated: a node accepts it only when configured so, and
 * production configurations never are.
 */
enum { OVL_PLAIN_TYPE = 0x5F };
struct ovl_plainw_head {
    uint8_t type;             /* OVL_PLAIN_TYPE */
    uint8_t version;          /* OVL_MSG_VERSION */
    uint8_t reserved[2];
    uint8_t sender[32];
};
_Static_assert(sizeof(struct ovl_plainw_head) == 36, "plain head");

/* ------------------------------------------------------------------------
 * Decoded forms
 * ------------------------------------------------------------------------ */

/* An address in host form. */
struct ovl_addr {
    uint8_t family;   /* OVL_AF_* */
    uint16_t port;
    uint8_t ip[16];
};

enum { OVL_ADDR_COMPACT_MAX = 19 }; /* family + port + 16 bytes */

struct ovl_contact {
    uint8_t identity[OVL_ED_PK_LEN];
    uint8_t node_id[OVL_NODE_ID_LEN]; /* computed from identity */
    struct ovl_addr udp;
    uint16_t tcp_port;
    uint8_t flags;
};

/* Why a message was refused by the decoder. */
enum ovl_mdrop {
    OVL_MD_NONE = 0,
    OVL_MD_TOO_SHORT,    /* shorter than the type's fixed part */
    OVL_MD_TOO_LONG,     /* trailing bytes, or over OVL_MSG_MAX */
    OVL_MD_BAD_VERSION,
    OVL_MD_BAD_TYPE,
    OVL_MD_BAD_FLAGS,    /* flag bits not defined for the type */
    OVL_MD_BAD_RESERVED, /* a reserved byte is not zero */
    OVL_MD_BAD_COUNT,    /* a count or length out of its bounds */
    OVL_MD_BAD_ADDR,     /* unknown family, zero port, junk in the ip */
    OVL_MD_BAD_NAME,     /* handle not a valid name */
    OVL_MD_BAD_RID,      /* request without id */
    OVL_MD__COUNT
};

const char *ovl_mdrop_name(enum ovl_mdrop d);

struct ovl_msg {
    uint8_t type;   /* enum ovl_mtype */
    uint8_t flags;
    uint32_t rid;
    union {
        struct { struct ovl_addr observed; } pong;
        struct { uint16_t code; } error;
        struct {
            uint8_t role;
            uint8_t handle_len;
            char handle[OVL_NAME_MAX + 1]; /* NUL-terminated */
            const uint8_t *cert;           /* OVL_CERT_LEN bytes or NULL */
        } login;
        struct {
            struct ovl_addr observed;
            uint16_t keepalive_s;
        } login_ok;
        struct {
            uint16_t code;
            uint8_t count;
            struct ovl_contact contacts[OVL_LOGIN_ERR_CONTACTS_MAX];
        } login_err;
        struct { uint8_t max; } hostcache_get;
        struct {
            uint8_t count;
            struct ovl_contact contacts[OVL_CONTACTS_MAX];
        } contacts; /* HOSTCACHE, NODES */
        struct { uint8_t target[OVL_KEY_LEN_DHT]; } find_node;
        struct {
            const uint8_t *record;
            uint16_t record_len;
        } store;
        struct {
            uint8_t status;
            uint16_t replicas;
            uint64_t seq;
        } store_ok;
        struct {
            uint8_t key[OVL_KEY_LEN_DHT];
            uint64_t known_seq;
        } find_value;
        struct {
            uint8_t status;
            uint8_t rounds;
            uint16_t messages;
            const uint8_t *record; /* FOUND */
            uint16_t record_len;
            uint8_t count;
            struct ovl_contact contacts[OVL_CONTACTS_MAX];
        } value;
        struct {
            uint8_t key[OVL_KEY_LEN_DHT];
            uint16_t ttl_s;
        } subscribe;
        struct {
            uint8_t key[OVL_KEY_LEN_DHT];
            const uint8_t *record; /* NULL: none known */
            uint16_t record_len;
        } notify;
        struct {
            struct ovl_contact target;
            uint8_t result;
        } reach; /* REACH_PROBE, REACH_OK */
    } u;
};

/* ------------------------------------------------------------------------
 * Functions
 * ------------------------------------------------------------------------ */

/* Short stable name of a message type ("FIND_NODE"), "?" if unknown. */
const char *ovl_mtype_name(uint8_t type);

/* True for request types (those that need a non-zero request id). */
bool ovl_mtype_is_request(uint8_t type);

/*
 * Encodes @m into @out. The record and certificate pointers must be set
 * where the type has them (and are copied, not checked: ovl_record.h
 * verifies records). Returns the length, -EINVAL for a message that could
 * not be decoded again (bad count, name, address, type, zero request id
 * on a request...) or -ENOBUFS when @cap is too small. Never produces
 * more than OVL_MSG_MAX bytes.
 */
int ovl_msg_encode(const struct ovl_msg *m, uint8_t *out, size_t cap);

/*
 * Decodes one message of exactly @len bytes. Returns 0, or -EBADMSG with
 * the reason in *why. Reads nothing past @len; record pointers in @m
 * point into @buf.
 */
int ovl_msg_decode(struct ovl_msg *m, const uint8_t *buf, size_t len,
                   enum ovl_mdrop *why);

/* Address helpers. */
int ovl_addr_encode(uint8_t out[20], const struct ovl_addr *a, bool optional);
int ovl_addr_decode(struct ovl_addr *a, const uint8_t in[20], bool optional);
bool ovl_addr_eq(const struct ovl_addr *a, const struct ovl_addr *b);
/* Compact form for the secure-session layer's opaque address (family,
 * port BE, 4 or 16 IP bytes). Returns the length (7 or 19), 0 for NONE. */
size_t ovl_addr_compact(uint8_t out[OVL_ADDR_COMPACT_MAX],
                        const struct ovl_addr *a);
int ovl_addr_from_compact(struct ovl_addr *a, const uint8_t *in, size_t len);
/* An IPv4 address a.b.c.d:port from a host-order 32-bit value. */
void ovl_addr_v4(struct ovl_addr *a, uint32_t ip, uint16_t port);
/* "1.2.3.4:5", "[2001:db8::1]:5" or "none" into @out (>= 64 bytes). */
void ovl_addr_to_text(char *out, size_t cap, const struct ovl_addr *a);

/* Contact helpers: the wire form, and filling node_id from identity. */
void ovl_contact_encode(struct ovl_msgw_contact *w,
                        const struct ovl_contact *c);
int ovl_contact_decode(struct ovl_contact *c,
                       const struct ovl_msgw_contact *w);

/* Names (handles, rooms): 1..OVL_NAME_MAX bytes of printable ASCII
 * (0x21..0x7E). */
bool ovl_name_valid(const char *name, size_t len);

/* "peer" / "supernode"; "presence" / "lastseen" / "room" ("unknown" for
 * other values): the names status, logs and JSON use. */
const char *ovl_role_name(enum ovl_role role);
const char *ovl_rtype_name(uint8_t rtype);

#endif /* OVL_MSG_H */
