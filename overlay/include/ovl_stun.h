/*
 * ovl_stun.h: STUN (RFC 8489) Binding, as every Chorus supernode serves it,
 * with the NAT-behaviour-discovery extensions of RFC 5780 (CHANGE-REQUEST,
 * RESPONSE-ORIGIN, OTHER-ADDRESS). Standard STUN clients (coturn's
 * turnutils_stunclient, browsers' ICE agents for plain Binding) work
 * against it.
 *
 * Sans-I/O: the functions take bytes and addresses and return bytes and
 * addresses; the owner of the socket sends them. ovl_nat.h builds the NAT
 * type classification on top.
 *
 * What is implemented
 * -------------------
 *  - Parsing of any STUN message: the 20-byte header (two zero bits,
 *    method and class, length, magic cookie 0x2112A442, 96-bit transaction
 *    id), then a bounded walk over the attributes (type, length, value
 *    padded to 4 bytes). FINGERPRINT is verified when present and must be
 *    last; attributes after MESSAGE-INTEGRITY other than FINGERPRINT and
 *    MESSAGE-INTEGRITY-SHA256 are ignored (RFC 8489 section 14.5).
 *    MESSAGE-INTEGRITY is recognised but not verified: Binding needs no
 *    credentials here, and responses never carry it.
 *  - A server function: a Binding request in, the response out (success
 *    with XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, and with two server
 *    addresses RESPONSE-ORIGIN and OTHER-ADDRESS; or 420 with
 *    UNKNOWN-ATTRIBUTES), always ending in FINGERPRINT.
 *  - A client side: Binding requests with random transaction ids
 *    (ovl_rng.h) and an optional CHANGE-REQUEST, and the matching of
 *    responses to them.
 *
 * Anti-amplification
 * ------------------
 * Only well-formed Binding *requests* are answered. Indications, responses,
 * other methods and anything malformed get nothing back (they are counted
 * by the caller through enum ovl_stun_drop). A success response carries
 * only what the request needs: 52 bytes for IPv4 (64 with SOFTWARE
 * "chorus"), 76 with the RFC 5780 attributes; see OVL_STUN_RESP_MAX.
 *
 * Thread: any. Everything here is pure; a struct ovl_stun_server is
 * read-only after set-up and may be shared by threads.
 */
#ifndef OVL_STUN_H
#define OVL_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ovl_rng.h"

/* ------------------------------------------------------------------------
 * Constants
 * ------------------------------------------------------------------------ */

enum {
    OVL_STUN_HDR_LEN = 20,
    OVL_STUN_ATTR_HDR_LEN = 4,
    OVL_STUN_TXID_LEN = 12,          /* 96 bits */
    OVL_STUN_MAGIC = 0x2112A442,     /* network order on the wire */
    OVL_STUN_FINGERPRINT_XOR = 0x5354554E, /* "STUN" */
    OVL_STUN_MAX_UNKNOWN = 8,        /* UNKNOWN-ATTRIBUTES entries kept */
    OVL_STUN_SOFTWARE_MAX = 32,      /* SOFTWARE bytes this side sends */
    OVL_STUN_REASON_MAX = 64,        /* reason phrase bytes kept from a
                                        received ERROR-CODE */

    /* Largest message the server or client function writes: header,
     * XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS
     * (24 bytes each for IPv6), SOFTWARE, FINGERPRINT. An error response is
     * smaller (checked in ovl_stun.c). */
    OVL_STUN_RESP_MAX = OVL_STUN_HDR_LEN + 4 * 24 +
                        OVL_STUN_ATTR_HDR_LEN + OVL_STUN_SOFTWARE_MAX + 8,
    /* Largest request ovl_stun_request_build writes. */
    OVL_STUN_REQ_MAX = OVL_STUN_HDR_LEN + 8 +
                       OVL_STUN_ATTR_HDR_LEN + OVL_STUN_SOFTWARE_MAX + 8,
};

/* Message classes (RFC 8489 section 5: bits C1 C0). */
enum ovl_stun_class {
    OVL_STUN_CLASS_REQUEST = 0,
    OVL_STUN_CLASS_INDICATION = 1,
    OVL_STUN_CLASS_SUCCESS = 2,
    OVL_STUN_CLASS_ERROR = 3,
};

enum { OVL_STUN_METHOD_BINDING = 0x001 };

/* Message types: method and class interleaved as in RFC 8489 figure 3. */
enum ovl_stun_msg_type {
    OVL_STUN_BINDING_REQUEST = 0x0001,
    OVL_STUN_BINDING_INDICATION = 0x0011,
    OVL_STUN_BINDING_SUCCESS = 0x0101,
    OVL_STUN_BINDING_ERROR = 0x0111,
};

/* Attribute types. 0x0000-0x7FFF are comprehension-required: a request
 * with one this side does not understand gets a 420. */
enum ovl_stun_attr_type {
    OVL_STUN_ATTR_MAPPED_ADDRESS = 0x0001,
    OVL_STUN_ATTR_RESPONSE_ADDRESS = 0x0002,  /* RFC 3489, not honoured */
    OVL_STUN_ATTR_CHANGE_REQUEST = 0x0003,    /* RFC 5780 */
    OVL_STUN_ATTR_SOURCE_ADDRESS = 0x0004,    /* RFC 3489, ignored */
    OVL_STUN_ATTR_CHANGED_ADDRESS = 0x0005,   /* RFC 3489 OTHER-ADDRESS */
    OVL_STUN_ATTR_USERNAME = 0x0006,
    OVL_STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
    OVL_STUN_ATTR_ERROR_CODE = 0x0009,
    OVL_STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
    OVL_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
    OVL_STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
    OVL_STUN_ATTR_PADDING = 0x0026,           /* RFC 5780, not supported */
    OVL_STUN_ATTR_RESPONSE_PORT = 0x0027,     /* RFC 5780, not supported */
    OVL_STUN_ATTR_COMPREHENSION_OPTIONAL = 0x8000, /* first optional type */
    OVL_STUN_ATTR_SOFTWARE = 0x8022,
    OVL_STUN_ATTR_ALTERNATE_SERVER = 0x8023,
    OVL_STUN_ATTR_FINGERPRINT = 0x8028,
    OVL_STUN_ATTR_RESPONSE_ORIGIN = 0x802B,   /* RFC 5780 */
    OVL_STUN_ATTR_OTHER_ADDRESS = 0x802C,     /* RFC 5780 */
};

/* CHANGE-REQUEST flags (RFC 5780 section 7.2). */
enum {
    OVL_STUN_CHANGE_IP = 0x04,
    OVL_STUN_CHANGE_PORT = 0x02,
    OVL_STUN_CHANGE_MASK = 0x06,
};

/* Address families inside address attributes. */
enum {
    OVL_STUN_FAMILY_NONE = 0, /* struct ovl_stun_addr: no address */
    OVL_STUN_FAMILY_IPV4 = 0x01,
    OVL_STUN_FAMILY_IPV6 = 0x02,
};

/* Error codes this side sends or acts on (RFC 8489 section 14.8). */
enum {
    OVL_STUN_ERR_BAD_REQUEST = 400,
    OVL_STUN_ERR_UNKNOWN_ATTRIBUTE = 420,
};

/* ------------------------------------------------------------------------
 * Layouts. Byte arrays only (alignment 1, no padding), like ovl_wire.h;
 * multi-byte fields are big endian (_be) and read with ovl_load_be16.
 * ------------------------------------------------------------------------ */

/* The header of every STUN message (RFC 8489 section 5). */
struct ovl_stun_hdr {
    uint8_t type_be[2];    /* 00 + method/class bits */
    uint8_t length_be[2];  /* bytes after the header; a multiple of 4 */
    uint8_t cookie_be[4];  /* OVL_STUN_MAGIC */
    uint8_t txid[OVL_STUN_TXID_LEN];
};
_Static_assert(sizeof(struct ovl_stun_hdr) == OVL_STUN_HDR_LEN, "stun hdr size");

/* The header of every attribute; the value follows, padded to 4 bytes. */
struct ovl_stun_attr_hdr {
    uint8_t type_be[2];
    uint8_t length_be[2];  /* value bytes, without the padding */
};
_Static_assert(sizeof(struct ovl_stun_attr_hdr) == OVL_STUN_ATTR_HDR_LEN,
               "stun attr hdr size");

/* Value of (XOR-)MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS for IPv4.
 * In XOR-MAPPED-ADDRESS the port is xored with the cookie's top 16 bits
 * and the address with the cookie (RFC 8489 section 14.2). */
struct ovl_stun_addr4 {
    uint8_t reserved;      /* zero */
    uint8_t family;        /* OVL_STUN_FAMILY_IPV4 */
    uint8_t port_be[2];
    uint8_t ip[4];
};
_Static_assert(sizeof(struct ovl_stun_addr4) == 8, "stun addr4 size");

/* The same for IPv6; XOR-MAPPED-ADDRESS xors the address with the cookie
 * followed by the transaction id. */
struct ovl_stun_addr6 {
    uint8_t reserved;
    uint8_t family;        /* OVL_STUN_FAMILY_IPV6 */
    uint8_t port_be[2];
    uint8_t ip[16];
};
_Static_assert(sizeof(struct ovl_stun_addr6) == 20, "stun addr6 size");

/* CHANGE-REQUEST value (RFC 5780 section 7.2). */
struct ovl_stun_change_request {
    uint8_t flags_be[4];   /* OVL_STUN_CHANGE_IP | OVL_STUN_CHANGE_PORT */
};
_Static_assert(sizeof(struct ovl_stun_change_request) == 4, "change req size");

/* ERROR-CODE value head; a UTF-8 reason phrase follows (RFC 8489 14.8). */
struct ovl_stun_error_code {
    uint8_t reserved[2];   /* zero */
    uint8_t klass;         /* low 3 bits: hundreds digit, 3..6 */
    uint8_t number;        /* 0..99 */
};
_Static_assert(sizeof(struct ovl_stun_error_code) == 4, "error code size");

/* FINGERPRINT value: CRC-32 of the message before it, xor "STUN". */
struct ovl_stun_fingerprint {
    uint8_t crc_be[4];
};
_Static_assert(sizeof(struct ovl_stun_fingerprint) == 4, "fingerprint size");

/* ------------------------------------------------------------------------
 * Addresses
 * ------------------------------------------------------------------------ */

/* A transport address, independent of the socket API. */
struct ovl_stun_addr {
    uint8_t family;        /* OVL_STUN_FAMILY_*; NONE = no address */
    uint16_t port;         /* host order */
    uint8_t ip[16];        /* network order; IPv4 uses ip[0..3], rest zero */
};

/* Fills @a from a sockaddr (AF_INET, AF_INET6). IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d, as a dual-stack socket reports them) become IPv4, so a
 * client sees the address it actually uses. Returns 0, or -EAFNOSUPPORT. */
int ovl_stun_addr_from_sockaddr(struct ovl_stun_addr *a, const struct sockaddr *sa);

/* Writes @a as a sockaddr into @ss; returns its length, or -EAFNOSUPPORT. */
int ovl_stun_addr_to_sockaddr(const struct ovl_stun_addr *a,
                              struct sockaddr_storage *ss);

/* Parses "1.2.3.4:5" or "[2001:db8::1]:5" (port required). 0 or -EINVAL. */
int ovl_stun_addr_parse(struct ovl_stun_addr *a, const char *text);

/* Same family, IP and port. */
bool ovl_stun_addr_eq(const struct ovl_stun_addr *a, const struct ovl_stun_addr *b);

/* Same family and IP (ports may differ). */
bool ovl_stun_addr_ip_eq(const struct ovl_stun_addr *a, const struct ovl_stun_addr *b);

/* Formats @a as "1.2.3.4:5" / "[2001:db8::1]:5" / "none" into @buf
 * (OVL_STUN_ADDR_TEXT_MAX bytes suffice); returns @buf. */
enum { OVL_STUN_ADDR_TEXT_MAX = 48 };
const char *ovl_stun_addr_format(char *buf, size_t cap, const struct ovl_stun_addr *a);

/* ------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------ */

/* Why a STUN datagram was not answered or not accepted. The caller counts
 * these (malformed ones as invalid input); none is ever asserted on. */
enum ovl_stun_drop {
    OVL_STUN_DROP_NONE = 0,
    OVL_STUN_DROP_TOO_SHORT,       /* under 20 bytes */
    OVL_STUN_DROP_BAD_TYPE,        /* first two bits not zero */
    OVL_STUN_DROP_BAD_COOKIE,      /* no magic cookie (RFC 3489 or noise) */
    OVL_STUN_DROP_BAD_LENGTH,      /* length field not a multiple of 4, or
                                      not matching the datagram */
    OVL_STUN_DROP_BAD_ATTR,        /* attribute runs past the end, or a known
                                      attribute has a bad value, or anything
                                      follows FINGERPRINT */
    OVL_STUN_DROP_BAD_FINGERPRINT, /* FINGERPRINT present but wrong */
    OVL_STUN_DROP_NOT_REQUEST,     /* well formed, but an indication or a
                                      response: never answered */
    OVL_STUN_DROP_BAD_METHOD,      /* a request for a method other than
                                      Binding: not answered */
    OVL_STUN_DROP_TXID_MISMATCH,   /* client: not the transaction we sent */
    OVL_STUN_DROP_NO_ADDRESS,      /* client: success without a mapped
                                      address */
    OVL_STUN_DROP__COUNT
};

/* A short stable name ("bad_cookie", ...) for logs and metrics. */
const char *ovl_stun_drop_name(enum ovl_stun_drop d);

/* True for the drops that mean "malformed" (as opposed to "well formed but
 * not for us"): the bridge counts the first kind as rx_invalid. */
bool ovl_stun_drop_is_malformed(enum ovl_stun_drop d);

/* What ovl_stun_parse found. Pointers point into the parsed buffer. Only
 * the first occurrence of each attribute counts (RFC 8489 section 14). */
struct ovl_stun_msg {
    uint16_t type;                  /* raw 14-bit message type */
    uint16_t method;                /* OVL_STUN_METHOD_* */
    enum ovl_stun_class klass;
    uint8_t txid[OVL_STUN_TXID_LEN];
    size_t len;                     /* whole message, header included */

    struct ovl_stun_addr xor_mapped;      /* family NONE when absent */
    struct ovl_stun_addr mapped;
    struct ovl_stun_addr response_origin;
    struct ovl_stun_addr other_address;   /* or RFC 3489 CHANGED-ADDRESS */
    bool has_change_request;
    uint32_t change_flags;          /* OVL_STUN_CHANGE_* bits as received */
    bool has_fingerprint;           /* present and verified */
    bool has_integrity;             /* MESSAGE-INTEGRITY(-SHA256) present */
    uint16_t error_code;            /* 300..699, 0 when absent */
    const uint8_t *reason;          /* ERROR-CODE reason phrase (not NUL
                                       terminated), NULL when absent */
    size_t reason_len;
    const uint8_t *software;        /* SOFTWARE value, NULL when absent */
    size_t software_len;
    /* Comprehension-required attributes this side does not understand, in
     * order of appearance; n_unknown counts all, the array keeps the first
     * OVL_STUN_MAX_UNKNOWN. */
    uint16_t unknown[OVL_STUN_MAX_UNKNOWN];
    unsigned n_unknown;
    /* UNKNOWN-ATTRIBUTES of a received 420 (first OVL_STUN_MAX_UNKNOWN). */
    uint16_t unknown_listed[OVL_STUN_MAX_UNKNOWN];
    unsigned n_unknown_listed;
};

/*
 * Parses one STUN message of exactly @len bytes (a UDP datagram) into @m.
 * Checks the header, walks every attribute within bounds, decodes the ones
 * listed in struct ovl_stun_msg and verifies FINGERPRINT when present.
 * Returns 0, or -EBADMSG with the reason in *drop (never reads past @len).
 */
int ovl_stun_parse(struct ovl_stun_msg *m, const uint8_t *buf, size_t len,
                   enum ovl_stun_drop *drop);

/* The 14-bit message type for @method and @klass (RFC 8489 figure 3). */
uint16_t ovl_stun_type(uint16_t method, enum ovl_stun_class klass);

/* CRC-32 (ISO-HDLC, as zlib's crc32) of @len bytes: FINGERPRINT's base. */
uint32_t ovl_stun_crc32(const uint8_t *buf, size_t len);

/* ------------------------------------------------------------------------
 * Building
 * ------------------------------------------------------------------------ */

/* A message under construction in a caller-owned buffer. Errors are
 * sticky: after an overflow every call is a no-op and finish fails. */
struct ovl_stun_builder {
    uint8_t *buf;          /* private */
    size_t cap;            /* private */
    size_t len;            /* read-only: bytes written so far */
    bool overflow;         /* read-only */
};

/* Starts a message of @type with transaction id @txid in @buf. */
void ovl_stun_build_init(struct ovl_stun_builder *b, uint8_t *buf, size_t cap,
                         uint16_t type, const uint8_t txid[OVL_STUN_TXID_LEN]);

/* Appends an attribute with a raw value (zero padding added). */
void ovl_stun_build_attr(struct ovl_stun_builder *b, uint16_t type,
                         const void *value, size_t len);

/* Appends an address attribute; for OVL_STUN_ATTR_XOR_MAPPED_ADDRESS the
 * value is xored with the cookie and transaction id. */
void ovl_stun_build_addr(struct ovl_stun_builder *b, uint16_t type,
                         const struct ovl_stun_addr *a);

/* Appends ERROR-CODE (@code 300..699) with reason phrase @reason. */
void ovl_stun_build_error(struct ovl_stun_builder *b, uint16_t code, const char *reason);

/* Sets the header length, appends FINGERPRINT if @fingerprint and returns
 * the message length, or -ENOBUFS if the buffer was too small. */
int ovl_stun_build_finish(struct ovl_stun_builder *b, bool fingerprint);

/* ------------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------------ */

/*
 * Server configuration: read-only once set up, owned by the caller.
 * For RFC 5780 the server has two IPs and two ports and listens on all four
 * combinations; a request that arrives on (ip[i], port[j]) is answered from
 * (ip[i ^ change_ip], port[j ^ change_port]) with OTHER-ADDRESS
 * (ip[!i], port[!j]). A server with one address leaves rfc5780 false; it
 * answers CHANGE-REQUEST with flags set by 420 (RFC 5780 section 6.1).
 */
struct ovl_stun_server {
    const char *software;   /* SOFTWARE in responses (up to
                               OVL_STUN_SOFTWARE_MAX bytes), NULL: none */
    bool mapped_address;    /* also send MAPPED-ADDRESS, for clients older
                               than RFC 5389 that only read that */
    bool rfc5780;           /* ip[1]/port[1] below are valid */
    struct ovl_stun_addr ip[2];   /* ip[0] primary, ip[1] alternate (ports
                                     ignored); same family */
    uint16_t port[2];             /* port[0] primary, port[1] alternate */
};

/* Where and what to answer. */
struct ovl_stun_reply {
    size_t len;                   /* bytes written to the output; 0: none */
    unsigned from_ip;             /* index into ovl_stun_server.ip */
    unsigned from_port;           /* index into ovl_stun_server.port */
    struct ovl_stun_addr from;    /* that address (rfc5780 only; otherwise
                                     family NONE: "the socket it came in on") */
    bool changed;                 /* sent from another address than the
                                     request arrived on */
};

/*
 * Handles one datagram @req (already classified as STUN) that arrived from
 * @src on local address @local (NULL when unknown; with rfc5780 it must be
 * one of the four server addresses, or the request is answered as by a
 * single-address server).
 *
 * On return 0, reply->len > 0 means: send out[0..len) to @src from the
 * address in *reply. A Binding request with unknown comprehension-required
 * attributes, or asking for a change this server cannot make, yields a 420
 * response (with UNKNOWN-ATTRIBUTES). Returns -EBADMSG when nothing is to be
 * sent, with the reason in *drop (malformed, not a request, not Binding),
 * -EAFNOSUPPORT for a source without an address, -ENOBUFS if @cap is below
 * OVL_STUN_RESP_MAX.
 */
int ovl_stun_server_handle(const struct ovl_stun_server *srv, const uint8_t *req,
                           size_t len, const struct ovl_stun_addr *src,
                           const struct ovl_stun_addr *local, uint8_t *out,
                           size_t cap, struct ovl_stun_reply *reply,
                           enum ovl_stun_drop *drop);

/* ------------------------------------------------------------------------
 * Client
 * ------------------------------------------------------------------------ */

/*
 * Builds a Binding request with a fresh random transaction id from @rng
 * (NULL: libsodium), stored in @txid. @change is 0 or OVL_STUN_CHANGE_*
 * flags (adds CHANGE-REQUEST); @software may be NULL. FINGERPRINT is always
 * added. Returns the length (at most OVL_STUN_REQ_MAX) or -ENOBUFS.
 */
int ovl_stun_request_build(uint8_t *out, size_t cap, const struct ovl_rng *rng,
                           uint32_t change, const char *software,
                           uint8_t txid[OVL_STUN_TXID_LEN]);

/* What a Binding response said. */
struct ovl_stun_result {
    bool success;                 /* success class; else error class */
    struct ovl_stun_addr mapped;  /* XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS */
    struct ovl_stun_addr other;   /* OTHER-ADDRESS (or CHANGED-ADDRESS) */
    struct ovl_stun_addr origin;  /* RESPONSE-ORIGIN */
    uint16_t error_code;          /* error class: the code (0 if absent) */
    uint16_t unknown[OVL_STUN_MAX_UNKNOWN]; /* error 420: what it listed */
    unsigned n_unknown;
};

/*
 * Checks whether @buf is the response to our request @txid and extracts
 * the result. Returns 0 for a Binding success response carrying a mapped
 * address or a Binding error response; -EBADMSG otherwise, with *drop set
 * (malformed, TXID_MISMATCH, NOT_REQUEST for a request or indication,
 * NO_ADDRESS for a success without an address, BAD_ATTR for a success with
 * an unknown comprehension-required attribute, which RFC 8489 section
 * 6.3.3 says to discard).
 */
int ovl_stun_response_parse(struct ovl_stun_result *r, const uint8_t *buf,
                            size_t len, const uint8_t txid[OVL_STUN_TXID_LEN],
                            enum ovl_stun_drop *drop);

#endif /* OVL_STUN_H */
