/*
 * ovl_stun.c: STUN Binding (RFC 8489) with RFC 5780's CHANGE-REQUEST,
 * RESPONSE-ORIGIN and OTHER-ADDRESS. See ovl_stun.h.
 */
#include "ovl_stun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovl_wire.h"

_Static_assert(OVL_STUN_RESP_MAX == 160, "response bound");
/* The largest error response: header, ERROR-CODE with the longest reason
 * we send (20 bytes padded), a full UNKNOWN-ATTRIBUTES, SOFTWARE and
 * FINGERPRINT. It must fit the same output buffer. */
_Static_assert(OVL_STUN_HDR_LEN + (4 + 4 + 20) + (4 + 2 * OVL_STUN_MAX_UNKNOWN) +
                   (4 + OVL_STUN_SOFTWARE_MAX) + 8 <= OVL_STUN_RESP_MAX,
               "error response bound");

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- CRC-32 ------------------------------------------------------------ */

/* Reflected polynomial 0xEDB88320, one nibble at a time: a 16-entry table
 * is enough for the few hundred bytes a STUN message has. */
uint32_t ovl_stun_crc32(const uint8_t *buf, size_t len)
{
    static const uint32_t t[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
        0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
        0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
    };
    uint32_t crc = 0xFFFFFFFFu;

    for (size_t i = 0; i < len; i++) {
        crc ^= buf[i];
        crc = (crc >> 4) ^ t[crc & 15];
        crc = (crc >> 4) ^ t[crc & 15];
    }
    return crc ^ 0xFFFFFFFFu;
}

/* ---- addresses --------------------------------------------------------- */

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

int ovl_stun_addr_from_sockaddr(struct ovl_stun_addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa == NULL)
        return -EAFNOSUPPORT;
    /* Copies, not casts: a struct sockaddr may be less aligned. */
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;

        memcpy(&in, sa, sizeof(in));
        a->family = OVL_STUN_FAMILY_IPV4;
        a->port = ntohs(in.sin_port);
        memcpy(a->ip, &in.sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        const uint8_t *ip = in6.sin6_addr.s6_addr;

        memcpy(&in6, sa, sizeof(in6));
        a->port = ntohs(in6.sin6_port);
        if (memcmp(ip, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
            a->family = OVL_STUN_FAMILY_IPV4;
            memcpy(a->ip, ip + 12, 4);
        } else {
            a->family = OVL_STUN_FAMILY_IPV6;
            memcpy(a->ip, ip, 16);
        }
        return 0;
    }
    return -EAFNOSUPPORT;
}

int ovl_stun_addr_to_sockaddr(const struct ovl_stun_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == OVL_STUN_FAMILY_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;

        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        return (int)sizeof(*in);
    }
    if (a->family == OVL_STUN_FAMILY_IPV6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        memcpy(&in6->sin6_addr, a->ip, 16);
        return (int)sizeof(*in6);
    }
    return -EAFNOSUPPORT;
}

int ovl_stun_addr_parse(struct ovl_stun_addr *a, const char *text)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *h = text;
    size_t hlen;
    char *end;
    unsigned long port;

    memset(a, 0, sizeof(*a));
    if (text == NULL || (colon = strrchr(text, ':')) == NULL)
        return -EINVAL;
    hlen = (size_t)(colon - text);
    if (text[0] == '[') {
        if (hlen < 2 || text[hlen - 1] != ']')
            return -EINVAL;
        h = text + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535)
        return -EINVAL;
    a->port = (uint16_t)port;
    if (text[0] != '[' && inet_pton(AF_INET, host, a->ip) == 1) {
        a->family = OVL_STUN_FAMILY_IPV4;
        return 0;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, a->ip) == 1) {
        a->family = OVL_STUN_FAMILY_IPV6;
        return 0;
    }
    memset(a, 0, sizeof(*a));
    return -EINVAL;
}

static size_t ip_len(uint8_t family)
{
    return family == OVL_STUN_FAMILY_IPV4 ? 4 : family == OVL_STUN_FAMILY_IPV6 ? 16 : 0;
}

bool ovl_stun_addr_ip_eq(const struct ovl_stun_addr *a, const struct ovl_stun_addr *b)
{
    return a->family == b->family && a->family != OVL_STUN_FAMILY_NONE &&
           memcmp(a->ip, b->ip, ip_len(a->family)) == 0;
}

bool ovl_stun_addr_eq(const struct ovl_stun_addr *a, const struct ovl_stun_addr *b)
{
    return ovl_stun_addr_ip_eq(a, b) && a->port == b->port;
}

const char *ovl_stun_addr_format(char *buf, size_t cap, const struct ovl_stun_addr *a)
{
    char ip[INET6_ADDRSTRLEN];

    if (cap == 0)
        return buf;
    if (a->family == OVL_STUN_FAMILY_IPV4 && inet_ntop(AF_INET, a->ip, ip, sizeof(ip)))
        snprintf(buf, cap, "%s:%u", ip, (unsigned)a->port);
    else if (a->family == OVL_STUN_FAMILY_IPV6 && inet_ntop(AF_INET6, a->ip, ip, sizeof(ip)))
        snprintf(buf, cap, "[%s]:%u", ip, (unsigned)a->port);
    else
        snprintf(buf, cap, "none");
    return buf;
}

/* ---- parsing ----------------------------------------------------------- */

static const char *const drop_names[OVL_STUN_DROP__COUNT] = {
    [OVL_STUN_DROP_NONE] = "none",
    [OVL_STUN_DROP_TOO_SHORT] = "too_short",
    [OVL_STUN_DROP_BAD_TYPE] = "bad_type",
    [OVL_STUN_DROP_BAD_COOKIE] = "bad_cookie",
    [OVL_STUN_DROP_BAD_LENGTH] = "bad_length",
    [OVL_STUN_DROP_BAD_ATTR] = "bad_attr",
    [OVL_STUN_DROP_BAD_FINGERPRINT] = "bad_fingerprint",
    [OVL_STUN_DROP_NOT_REQUEST] = "not_request",
    [OVL_STUN_DROP_BAD_METHOD] = "bad_method",
    [OVL_STUN_DROP_TXID_MISMATCH] = "txid_mismatch",
    [OVL_STUN_DROP_NO_ADDRESS] = "no_address",
};

const char *ovl_stun_drop_name(enum ovl_stun_drop d)
{
    if ((unsigned)d >= OVL_STUN_DROP__COUNT)
        return "invalid";
    return drop_names[d];
}

bool ovl_stun_drop_is_malformed(enum ovl_stun_drop d)
{
    switch (d) {
    case OVL_STUN_DROP_TOO_SHORT:
    case OVL_STUN_DROP_BAD_TYPE:
    case OVL_STUN_DROP_BAD_COOKIE:
    case OVL_STUN_DROP_BAD_LENGTH:
    case OVL_STUN_DROP_BAD_ATTR:
    case OVL_STUN_DROP_BAD_FINGERPRINT:
        return true;
    default:
        return false;
    }
}

uint16_t ovl_stun_type(uint16_t method, enum ovl_stun_class klass)
{
    unsigned m = method & 0xFFF, c = (unsigned)klass & 3;

    /* M11..M7 C1 M6..M4 C0 M3..M0 (RFC 8489 figure 3). */
    return (uint16_t)((m & 0xF80) << 2 | (c & 2) << 7 | (m & 0x070) << 1 |
                      (c & 1) << 4 | (m & 0x00F));
}

static void split_type(uint16_t type, uint16_t *method, enum ovl_stun_class *klass)
{
    *method = (uint16_t)((type & 0x3E00) >> 2 | (type & 0x00E0) >> 1 | (type & 0x000F));
    *klass = (enum ovl_stun_class)((type & 0x0100) >> 7 | (type & 0x0010) >> 4);
}

/* Decodes an (XOR-)address value. Returns false if malformed. */
static bool get_addr(struct ovl_stun_addr *a, const uint8_t *v, size_t len, bool xored,
                     const uint8_t *hdr)
{
    /* The xor pad: the cookie, then the transaction id (bytes 4..19 of the
     * header, which is what the RFC specifies for both families). */
    const uint8_t *pad = hdr + 4;
    size_t n;

    memset(a, 0, sizeof(*a));
    if (len < 4)
        return false;
    if (v[1] == OVL_STUN_FAMILY_IPV4)
        n = 4;
    else if (v[1] == OVL_STUN_FAMILY_IPV6)
        n = 16;
    else
        return false;
    if (len != 4 + n)
        return false;
    a->family = v[1];
    a->port = ovl_load_be16(v + 2);
    memcpy(a->ip, v + 4, n);
    if (xored) {
        a->port ^= (uint16_t)(OVL_STUN_MAGIC >> 16);
        for (size_t i = 0; i < n; i++)
            a->ip[i] ^= pad[i];
    }
    return true;
}

/* Comprehension-required attributes this side understands (or knowingly
 * ignores). Everything else below 0x8000 is "unknown": a request carrying
 * one is answered with 420. RESPONSE-ADDRESS, PADDING and RESPONSE-PORT are
 * deliberately absent: honouring them would reflect or amplify. */
static bool attr_known(uint16_t t)
{
    switch (t) {
    case OVL_STUN_ATTR_MAPPED_ADDRESS:
    case OVL_STUN_ATTR_CHANGE_REQUEST:
    case OVL_STUN_ATTR_SOURCE_ADDRESS:
    case OVL_STUN_ATTR_CHANGED_ADDRESS:
    case OVL_STUN_ATTR_USERNAME:
    case OVL_STUN_ATTR_MESSAGE_INTEGRITY:
    case OVL_STUN_ATTR_ERROR_CODE:
    case OVL_STUN_ATTR_UNKNOWN_ATTRIBUTES:
    case OVL_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
    case OVL_STUN_ATTR_XOR_MAPPED_ADDRESS:
        return true;
    default:
        return t >= OVL_STUN_ATTR_COMPREHENSION_OPTIONAL;
    }
}

static bool addr_slot(struct ovl_stun_msg *m, uint16_t t, struct ovl_stun_addr **slot,
                      bool *xored)
{
    *xored = false;
    switch (t) {
    case OVL_STUN_ATTR_XOR_MAPPED_ADDRESS:
        *xored = true;
        *slot = &m->xor_mapped;
        return true;
    case OVL_STUN_ATTR_MAPPED_ADDRESS:
        *slot = &m->mapped;
        return true;
    case OVL_STUN_ATTR_RESPONSE_ORIGIN:
        *slot = &m->response_origin;
        return true;
    case OVL_STUN_ATTR_OTHER_ADDRESS:
    case OVL_STUN_ATTR_CHANGED_ADDRESS:
        *slot = &m->other_address;
        return true;
    default:
        return false;
    }
}

/* Decodes one attribute value into @m. @buf is the whole message (for the
 * xor pad). Returns false if a known attribute's value is malformed. */
static bool take_attr(struct ovl_stun_msg *m, const uint8_t *buf, uint16_t t,
                      const uint8_t *v, size_t len)
{
    struct ovl_stun_addr *slot;
    bool xored;

    if (addr_slot(m, t, &slot, &xored)) {
        struct ovl_stun_addr a;

        if (!get_addr(&a, v, len, xored, buf))
            return false;
        if (slot->family == OVL_STUN_FAMILY_NONE) /* first one counts */
            *slot = a;
        return true;
    }
    switch (t) {
    case OVL_STUN_ATTR_CHANGE_REQUEST:
        if (len != sizeof(struct ovl_stun_change_request))
            return false;
        if (!m->has_change_request) {
            m->has_change_request = true;
            m->change_flags = load_be32(v);
        }
        return true;
    case OVL_STUN_ATTR_ERROR_CODE:
        if (len < sizeof(struct ovl_stun_error_code) || (v[2] & 7) < 3 ||
            (v[2] & 7) > 6 || v[3] > 99)
            return false;
        if (m->error_code == 0) {
            m->error_code = (uint16_t)((v[2] & 7) * 100 + v[3]);
            m->reason = v + 4;
            m->reason_len = len - 4;
        }
        return true;
    case OVL_STUN_ATTR_UNKNOWN_ATTRIBUTES:
        if (len % 2 != 0)
            return false;
        for (size_t i = 0; i + 1 < len && m->n_unknown_listed < OVL_STUN_MAX_UNKNOWN; i += 2)
            m->unknown_listed[m->n_unknown_listed++] = ovl_load_be16(v + i);
        return true;
    case OVL_STUN_ATTR_MESSAGE_INTEGRITY:
        if (len != 20)
            return false;
        m->has_integrity = true;
        return true;
    case OVL_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
        if (len < 16 || len > 32 || len % 4 != 0)
            return false;
        m->has_integrity = true;
        return true;
    case OVL_STUN_ATTR_SOFTWARE:
        if (m->software == NULL) {
            m->software = v;
            m->software_len = len;
        }
        return true;
    default:
        if (!attr_known(t)) {
            if (m->n_unknown < OVL_STUN_MAX_UNKNOWN)
                m->unknown[m->n_unknown] = t;
            m->n_unknown++;
        }
        return true;
    }
}

static int bad(enum ovl_stun_drop *drop, enum ovl_stun_drop why)
{
    *drop = why;
    return -EBADMSG;
}

int ovl_stun_parse(struct ovl_stun_msg *m, const uint8_t *buf, size_t len,
                   enum ovl_stun_drop *drop)
{
    size_t off = OVL_STUN_HDR_LEN;
    bool after_integrity = false;

    memset(m, 0, sizeof(*m));
    *drop = OVL_STUN_DROP_NONE;
    if (buf == NULL || len < OVL_STUN_HDR_LEN)
        return bad(drop, OVL_STUN_DROP_TOO_SHORT);
    if ((buf[0] & 0xC0) != 0)
        return bad(drop, OVL_STUN_DROP_BAD_TYPE);
    if (load_be32(buf + 4) != OVL_STUN_MAGIC)
        return bad(drop, OVL_STUN_DROP_BAD_COOKIE);
    /* Over UDP one datagram is one message: the length field must account
     * for every byte after the header, no more and no less. */
    if ((ovl_load_be16(buf + 2) & 3) != 0 || (size_t)ovl_load_be16(buf + 2) + OVL_STUN_HDR_LEN != len)
        return bad(drop, OVL_STUN_DROP_BAD_LENGTH);
    m->type = ovl_load_be16(buf);
    split_type(m->type, &m->method, &m->klass);
    memcpy(m->txid, buf + 8, OVL_STUN_TXID_LEN);
    m->len = len;

    /* Bounded walk: every round consumes at least 4 bytes. */
    while (off < len) {
        uint16_t t, alen;
        size_t padded;

        if (len - off < OVL_STUN_ATTR_HDR_LEN)
            return bad(drop, OVL_STUN_DROP_BAD_ATTR);
        t = ovl_load_be16(buf + off);
        alen = ovl_load_be16(buf + off + 2);
        padded = ((size_t)alen + 3) & ~(size_t)3;
        if (padded > len - off - OVL_STUN_ATTR_HDR_LEN)
            return bad(drop, OVL_STUN_DROP_BAD_ATTR);
        if (t == OVL_STUN_ATTR_FINGERPRINT) {
            /* RFC 8489 14.7: the last attribute; the CRC covers everything
             * before it, with the header length already counting it. */
            if (alen != 4 || off + 8 != len)
                return bad(drop, OVL_STUN_DROP_BAD_ATTR);
            if ((ovl_stun_crc32(buf, off) ^ OVL_STUN_FINGERPRINT_XOR) != load_be32(buf + off + 4))
                return bad(drop, OVL_STUN_DROP_BAD_FINGERPRINT);
            m->has_fingerprint = true;
        } else if (!after_integrity || t == OVL_STUN_ATTR_MESSAGE_INTEGRITY_SHA256) {
            if (!take_attr(m, buf, t, buf + off + OVL_STUN_ATTR_HDR_LEN, alen))
                return bad(drop, OVL_STUN_DROP_BAD_ATTR);
            if (t == OVL_STUN_ATTR_MESSAGE_INTEGRITY)
                after_integrity = true;
        }
        /* else: RFC 8489 14.5, ignored after MESSAGE-INTEGRITY. */
        off += OVL_STUN_ATTR_HDR_LEN + padded;
    }
    return 0;
}

/* ---- building ---------------------------------------------------------- */

static bool room(struct ovl_stun_builder *b, size_t n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = true;
        return false;
    }
    return true;
}

void ovl_stun_build_init(struct ovl_stun_builder *b, uint8_t *buf, size_t cap,
                         uint16_t type, const uint8_t txid[OVL_STUN_TXID_LEN])
{
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    b->overflow = false;
    if (!room(b, OVL_STUN_HDR_LEN))
        return;
    ovl_store_be16(buf, (uint16_t)(type & 0x3FFF));
    ovl_store_be16(buf + 2, 0);
    store_be32(buf + 4, OVL_STUN_MAGIC);
    memcpy(buf + 8, txid, OVL_STUN_TXID_LEN);
    b->len = OVL_STUN_HDR_LEN;
}

void ovl_stun_build_attr(struct ovl_stun_builder *b, uint16_t type, const void *value,
                         size_t len)
{
    size_t padded = (len + 3) & ~(size_t)3;

    if (len > 0xFFFF || !room(b, OVL_STUN_ATTR_HDR_LEN + padded))
        return;
    ovl_store_be16(b->buf + b->len, type);
    ovl_store_be16(b->buf + b->len + 2, (uint16_t)len);
    if (len > 0)
        memcpy(b->buf + b->len + OVL_STUN_ATTR_HDR_LEN, value, len);
    memset(b->buf + b->len + OVL_STUN_ATTR_HDR_LEN + len, 0, padded - len);
    b->len += OVL_STUN_ATTR_HDR_LEN + padded;
}

void ovl_stun_build_addr(struct ovl_stun_builder *b, uint16_t type, const struct ovl_stun_addr *a)
{
    uint8_t v[sizeof(struct ovl_stun_addr6)];
    size_t n = ip_len(a->family);
    uint16_t port = a->port;

    if (n == 0 || b->overflow || b->len < OVL_STUN_HDR_LEN) {
        b->overflow = true; /* a caller bug: no address to encode */
        return;
    }
    v[0] = 0;
    v[1] = a->family;
    memcpy(v + 4, a->ip, n);
    if (type == OVL_STUN_ATTR_XOR_MAPPED_ADDRESS) {
        port ^= (uint16_t)(OVL_STUN_MAGIC >> 16);
        for (size_t i = 0; i < n; i++)
            v[4 + i] ^= b->buf[4 + i]; /* cookie || transaction id */
    }
    ovl_store_be16(v + 2, port);
    ovl_stun_build_attr(b, type, v, 4 + n);
}

void ovl_stun_build_error(struct ovl_stun_builder *b, uint16_t code, const char *reason)
{
    uint8_t v[4 + 128];
    size_t n = reason ? strlen(reason) : 0;

    if (code < 300 || code > 699 || n > sizeof(v) - 4) {
        b->overflow = true; /* a caller bug */
        return;
    }
    v[0] = v[1] = 0;
    v[2] = (uint8_t)(code / 100);
    v[3] = (uint8_t)(code % 100);
    if (n)
        memcpy(v + 4, reason, n);
    ovl_stun_build_attr(b, OVL_STUN_ATTR_ERROR_CODE, v, 4 + n);
}

int ovl_stun_build_finish(struct ovl_stun_builder *b, bool fingerprint)
{
    if (b->overflow || b->len < OVL_STUN_HDR_LEN)
        return -ENOBUFS;
    if (fingerprint) {
        uint8_t crc[4];

        if (!room(b, 8))
            return -ENOBUFS;
        /* The length must already include FINGERPRINT when the CRC runs. */
        ovl_store_be16(b->buf + 2, (uint16_t)(b->len + 8 - OVL_STUN_HDR_LEN));
        store_be32(crc, ovl_stun_crc32(b->buf, b->len) ^ OVL_STUN_FINGERPRINT_XOR);
        ovl_stun_build_attr(b, OVL_STUN_ATTR_FINGERPRINT, crc, sizeof(crc));
    }
    if (b->len - OVL_STUN_HDR_LEN > 0xFFFF)
        return -ENOBUFS;
    ovl_store_be16(b->buf + 2, (uint16_t)(b->len - OVL_STUN_HDR_LEN));
    return (int)b->len;
}

static void build_software(struct ovl_stun_builder *b, const char *software)
{
    size_t n;

    if (software == NULL || (n = strlen(software)) == 0)
        return;
    if (n > OVL_STUN_SOFTWARE_MAX)
        n = OVL_STUN_SOFTWARE_MAX;
    ovl_stun_build_attr(b, OVL_STUN_ATTR_SOFTWARE, software, n);
}

/* ---- server ------------------------------------------------------------ */

/* Which of the four RFC 5780 addresses @local is; false if none. */
static bool local_index(const struct ovl_stun_server *srv, const struct ovl_stun_addr *local,
                        unsigned *ip, unsigned *port)
{
    if (!srv->rfc5780 || local == NULL)
        return false;
    for (unsigned i = 0; i < 2; i++) {
        for (unsigned j = 0; j < 2; j++) {
            if (ovl_stun_addr_ip_eq(local, &srv->ip[i]) && local->port == srv->port[j]) {
                *ip = i;
                *port = j;
                return true;
            }
        }
    }
    return false;
}

static struct ovl_stun_addr server_addr(const struct ovl_stun_server *srv, unsigned i,
                                        unsigned j)
{
    struct ovl_stun_addr a = srv->ip[i & 1];

    a.port = srv->port[j & 1];
    return a;
}

/* 420 Unknown Attribute, listing @unknown (RFC 8489 section 14.9). */
static int answer_unknown(const struct ovl_stun_server *srv, const struct ovl_stun_msg *m,
                          const uint16_t *unknown, unsigned n, uint8_t *out, size_t cap)
{
    struct ovl_stun_builder b;
    uint8_t list[2 * OVL_STUN_MAX_UNKNOWN];

    if (n > OVL_STUN_MAX_UNKNOWN)
        n = OVL_STUN_MAX_UNKNOWN;
    for (unsigned i = 0; i < n; i++)
        ovl_store_be16(list + 2 * i, unknown[i]);
    ovl_stun_build_init(&b, out, cap, ovl_stun_type(m->method, OVL_STUN_CLASS_ERROR), m->txid);
    ovl_stun_build_error(&b, OVL_STUN_ERR_UNKNOWN_ATTRIBUTE, "Unknown Attribute");
    ovl_stun_build_attr(&b, OVL_STUN_ATTR_UNKNOWN_ATTRIBUTES, list, 2 * n);
    build_software(&b, srv->software);
    return ovl_stun_build_finish(&b, true);
}

int ovl_stun_server_handle(const struct ovl_stun_server *srv, const uint8_t *req,
                           size_t len, const struct ovl_stun_addr *src,
                           const struct ovl_stun_addr *local, uint8_t *out,
                           size_t cap, struct ovl_stun_reply *reply,
                           enum ovl_stun_drop *drop)
{
    static const uint16_t change_attr = OVL_STUN_ATTR_CHANGE_REQUEST;
    struct ovl_stun_builder b;
    struct ovl_stun_msg m;
    unsigned li = 0, lj = 0;
    bool alt;
    uint32_t change;
    int n;

    memset(reply, 0, sizeof(*reply));
    if (cap < OVL_STUN_RESP_MAX)
        return -ENOBUFS;
    if (ovl_stun_parse(&m, req, len, drop) != 0)
        return -EBADMSG;
    /* Indications and responses are never answered: nothing to amplify. */
    if (m.klass != OVL_STUN_CLASS_REQUEST)
        return bad(drop, OVL_STUN_DROP_NOT_REQUEST);
    if (m.method != OVL_STUN_METHOD_BINDING)
        return bad(drop, OVL_STUN_DROP_BAD_METHOD);
    if (src == NULL || ip_len(src->family) == 0)
        return -EAFNOSUPPORT;

    alt = local_index(srv, local, &li, &lj);
    if (m.n_unknown > 0) {
        n = answer_unknown(srv, &m, m.unknown, m.n_unknown, out, cap);
        goto out;
    }
    change = m.has_change_request ? (m.change_flags & OVL_STUN_CHANGE_MASK) : 0;
    /* RFC 5780 section 6.1: a server without an alternate address treats a
     * CHANGE-REQUEST that asks for a change as an unknown attribute. */
    if (change != 0 && !alt) {
        n = answer_unknown(srv, &m, &change_attr, 1, out, cap);
        goto out;
    }
    reply->from_ip = li ^ ((change & OVL_STUN_CHANGE_IP) ? 1u : 0u);
    reply->from_port = lj ^ ((change & OVL_STUN_CHANGE_PORT) ? 1u : 0u);
    reply->changed = change != 0;

    ovl_stun_build_init(&b, out, cap, OVL_STUN_BINDING_SUCCESS, m.txid);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_XOR_MAPPED_ADDRESS, src);
    if (srv->mapped_address)
        ovl_stun_build_addr(&b, OVL_STUN_ATTR_MAPPED_ADDRESS, src);
    if (alt) {
        struct ovl_stun_addr origin = server_addr(srv, reply->from_ip, reply->from_port);
        struct ovl_stun_addr other = server_addr(srv, li ^ 1u, lj ^ 1u);

        reply->from = origin;
        ovl_stun_build_addr(&b, OVL_STUN_ATTR_RESPONSE_ORIGIN, &origin);
        ovl_stun_build_addr(&b, OVL_STUN_ATTR_OTHER_ADDRESS, &other);
    }
    build_software(&b, srv->software);
    n = ovl_stun_build_finish(&b, true);
out:
    if (n < 0) {
        memset(reply, 0, sizeof(*reply));
        return n;
    }
    if (!reply->changed && alt)
        reply->from = server_addr(srv, li, lj);
    reply->len = (size_t)n;
    *drop = OVL_STUN_DROP_NONE;
    return 0;
}

/* ---- client ------------------------------------------------------------ */

int ovl_stun_request_build(uint8_t *out, size_t cap, const struct ovl_rng *rng,
                           uint32_t change, const char *software,
                           uint8_t txid[OVL_STUN_TXID_LEN])
{
    struct ovl_stun_builder b;

    ovl_rng_bytes(rng, txid, OVL_STUN_TXID_LEN);
    ovl_stun_build_init(&b, out, cap, OVL_STUN_BINDING_REQUEST, txid);
    if (change != 0) {
        struct ovl_stun_change_request cr;

        store_be32(cr.flags_be, change & OVL_STUN_CHANGE_MASK);
        ovl_stun_build_attr(&b, OVL_STUN_ATTR_CHANGE_REQUEST, &cr, sizeof(cr));
    }
    build_software(&b, software);
    return ovl_stun_build_finish(&b, true);
}

int ovl_stun_response_parse(struct ovl_stun_result *r, const uint8_t *buf, size_t len,
                            const uint8_t txid[OVL_STUN_TXID_LEN], enum ovl_stun_drop *drop)
{
    struct ovl_stun_msg m;

    memset(r, 0, sizeof(*r));
    if (ovl_stun_parse(&m, buf, len, drop) != 0)
        return -EBADMSG;
    if (m.klass == OVL_STUN_CLASS_REQUEST || m.klass == OVL_STUN_CLASS_INDICATION)
        return bad(drop, OVL_STUN_DROP_NOT_REQUEST);
    if (m.method != OVL_STUN_METHOD_BINDING)
        return bad(drop, OVL_STUN_DROP_BAD_METHOD);
    if (memcmp(m.txid, txid, OVL_STUN_TXID_LEN) != 0)
        return bad(drop, OVL_STUN_DROP_TXID_MISMATCH);
    if (m.klass == OVL_STUN_CLASS_ERROR) {
        r->error_code = m.error_code;
        r->n_unknown = m.n_unknown_listed;
        memcpy(r->unknown, m.unknown_listed, sizeof(r->unknown));
        return 0;
    }
    /* RFC 8489 6.3.3: unknown comprehension-required attributes in a
     * success response make it unusable. */
    if (m.n_unknown > 0)
        return bad(drop, OVL_STUN_DROP_BAD_ATTR);
    r->mapped = m.xor_mapped.family != OVL_STUN_FAMILY_NONE ? m.xor_mapped : m.mapped;
    if (r->mapped.family == OVL_STUN_FAMILY_NONE)
        return bad(drop, OVL_STUN_DROP_NO_ADDRESS);
    r->success = true;
    r->other = m.other_address;
    r->origin = m.response_origin;
    return 0;
}
