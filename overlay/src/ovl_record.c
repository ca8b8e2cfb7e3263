/*
 * ovl_record.c: building, parsing and verifying signed records and
 * authority certificates (ovl_record.h).
 */
#include "ovl_record.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#define RECORD_CONTEXT "chorus record v1" /* 16 bytes, signed first */
#define CERT_CONTEXT "chorus cert v1\0\0"
enum { CONTEXT_LEN = 16, HEAD = (int)sizeof(struct ovl_recw_head) };
_Static_assert(sizeof(RECORD_CONTEXT) - 1 == CONTEXT_LEN, "context");

const char *ovl_rerr_name(enum ovl_rerr e)
{
    static const char *const names[OVL_RERR__COUNT] = {
        [OVL_RERR_NONE] = "none",
        [OVL_RERR_LAYOUT] = "layout",
        [OVL_RERR_SIGNATURE] = "signature",
        [OVL_RERR_EXPIRED] = "expired",
        [OVL_RERR_FUTURE] = "future",
        [OVL_RERR_LIFETIME] = "lifetime",
        [OVL_RERR_ATTEST] = "attest",
        [OVL_RERR_CERT_MISSING] = "cert_missing",
        [OVL_RERR_CERT_INVALID] = "cert_invalid",
        [OVL_RERR_CERT_MISMATCH] = "cert_mismatch",
        [OVL_RERR_CERT_EXPIRED] = "cert_expired",
    };

    return (unsigned)e < OVL_RERR__COUNT ? names[e] : "?";
}

/* Ed25519 over @ctx (16 bytes) || @msg. */
static void sign_ctx(uint8_t sig[OVL_SIG_LEN], const char *ctx,
                     const uint8_t *msg, size_t len,
                     const struct ovl_identity *id)
{
    uint8_t buf[CONTEXT_LEN + OVL_RECORD_MAX];

    memcpy(buf, ctx, CONTEXT_LEN);
    memcpy(buf + CONTEXT_LEN, msg, len);
    crypto_sign_detached(sig, NULL, buf, CONTEXT_LEN + len, id->ed_sk);
}

static bool verify_ctx(const uint8_t sig[OVL_SIG_LEN], const char *ctx,
                       const uint8_t *msg, size_t len, const uint8_t *pk)
{
    uint8_t buf[CONTEXT_LEN + OVL_RECORD_MAX];

    if (len > OVL_RECORD_MAX)
        return false;
    memcpy(buf, ctx, CONTEXT_LEN);
    memcpy(buf + CONTEXT_LEN, msg, len);
    return crypto_sign_verify_detached(sig, buf, CONTEXT_LEN + len, pk) == 0;
}

/* ---- Certificates ------------------------------------------------------------ */

int ovl_cert_sign(uint8_t out[OVL_CERT_LEN],
                  const struct ovl_identity *authority,
                  const struct ovl_cert *c)
{
    struct ovl_certw *w = (struct ovl_certw *)out;

    if (authority == NULL || c == NULL ||
        (c->kind != OVL_CERT_HANDLE && c->kind != OVL_CERT_ROOM) ||
        !ovl_name_valid(c->name, c->name_len) ||
        c->not_after <= c->not_before)
        return -EINVAL;
    memset(out, 0, OVL_CERT_LEN);
    w->version = OVL_MSG_VERSION;
    w->kind = c->kind;
    w->name_len = c->name_len;
    memcpy(w->name, c->name, c->name_len);
    memcpy(w->subject, c->subject, OVL_ED_PK_LEN);
    ovl_store_le64(w->not_before_le, c->not_before);
    ovl_store_le64(w->not_after_le, c->not_after);
    memcpy(w->authority, authority->ed_pk, OVL_ED_PK_LEN);
    sign_ctx(w->sig, CERT_CONTEXT, out, OVL_CERT_SIGNED_LEN, authority);
    return 0;
}

static int cert_fail(enum ovl_rerr *why, enum ovl_rerr e)
{
    if (why)
        *why = e;
    return -EBADMSG;
}

int ovl_cert_verify(struct ovl_cert *out, const uint8_t *buf, size_t len,
                    const uint8_t *authority_pk, uint64_t now_s,
                    enum ovl_rerr *why)
{
    const struct ovl_certw *w = (const struct ovl_certw *)buf;
    struct ovl_cert c;

    if (why)
        *why = OVL_RERR_NONE;
    if (buf == NULL || len != OVL_CERT_LEN || w->version != OVL_MSG_VERSION ||
        (w->kind != OVL_CERT_HANDLE && w->kind != OVL_CERT_ROOM) ||
        w->reserved != 0 ||
        !ovl_name_valid((const char *)w->name, w->name_len) ||
        !sodium_is_zero(w->name + w->name_len, OVL_NAME_MAX - w->name_len))
        return cert_fail(why, OVL_RERR_CERT_INVALID);
    if (authority_pk &&
        sodium_memcmp(w->authority, authority_pk, OVL_ED_PK_LEN) != 0)
        return cert_fail(why, OVL_RERR_CERT_INVALID);
    if (!verify_ctx(w->sig, CERT_CONTEXT, buf, OVL_CERT_SIGNED_LEN,
                    w->authority))
        return cert_fail(why, OVL_RERR_CERT_INVALID);
    memset(&c, 0, sizeof(c));
    c.kind = w->kind;
    c.name_len = w->name_len;
    memcpy(c.name, w->name, w->name_len);
    memcpy(c.subject, w->subject, OVL_ED_PK_LEN);
    c.not_before = ovl_load_le64(w->not_before_le);
    c.not_after = ovl_load_le64(w->not_after_le);
    memcpy(c.authority, w->authority, OVL_ED_PK_LEN);
    if (now_s + OVL_CLOCK_SKEW < c.not_before || now_s >= c.not_after)
        return cert_fail(why, OVL_RERR_CERT_EXPIRED);
    if (out)
        *out = c;
    return 0;
}

bool ovl_cert_matches(const struct ovl_cert *c, uint8_t kind,
                      const char *name, size_t name_len,
                      const uint8_t subject[OVL_ED_PK_LEN])
{
    return c->kind == kind && c->name_len == name_len &&
           memcmp(c->name, name, name_len) == 0 &&
           sodium_memcmp(c->subject, subject, OVL_ED_PK_LEN) == 0;
}

/* ---- Keys --------------------------------------------------------------------- */

void ovl_record_key(uint8_t key[OVL_KEY_LEN_DHT], uint8_t type,
                    const char *name, size_t name_len)
{
    uint8_t label[16] = {0};
    crypto_generichash_state st;

    memcpy(label, type == OVL_R_ROOM ? "chorus room" : "chorus handle",
           type == OVL_R_ROOM ? 11 : 13);
    crypto_generichash_init(&st, NULL, 0, OVL_KEY_LEN_DHT);
    crypto_generichash_update(&st, label, sizeof(label));
    crypto_generichash_update(&st, (const uint8_t *)name, name_len);
    crypto_generichash_final(&st, key, OVL_KEY_LEN_DHT);
}

static uint8_t cert_kind_of(uint8_t rtype)
{
    return rtype == OVL_R_ROOM ? OVL_CERT_ROOM : OVL_CERT_HANDLE;
}

/* ---- Building ------------------------------------------------------------------- */

static size_t body_len(const struct ovl_record_params *p)
{
    switch (p->type) {
    case OVL_R_PRESENCE:
        return sizeof(struct ovl_recw_presence) +
               p->naddr * sizeof(struct ovl_msgw_addr);
    case OVL_R_LASTSEEN:
        return sizeof(struct ovl_recw_lastseen);
    case OVL_R_ROOM:
        return sizeof(struct ovl_recw_room) +
               p->naddr * sizeof(struct ovl_msgw_addr);
    default:
        return 0;
    }
}

static int write_addrs(uint8_t *at, const struct ovl_addr *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ovl_addr_encode(at + i * sizeof(struct ovl_msgw_addr), &a[i],
                            false))
            return -EINVAL;
    return 0;
}

static int write_body(uint8_t *b, const struct ovl_record_params *p)
{
    switch (p->type) {
    case OVL_R_PRESENCE: {
        struct ovl_recw_presence *w = (struct ovl_recw_presence *)b;
        uint8_t tmp[20];

        if (p->supernode == NULL || p->role > OVL_ROLE__MAX ||
            ovl_addr_encode(tmp, &p->supernode->udp, false) ||
            (p->supernode->flags & ~OVL_CF_KNOWN))
            return -EINVAL;
        ovl_contact_encode(&w->supernode, p->supernode);
        w->naddr = p->naddr;
        w->role = p->role;
        return write_addrs(b + sizeof(*w), p->addrs, p->naddr);
    }
    case OVL_R_LASTSEEN: {
        struct ovl_recw_lastseen *w = (struct ovl_recw_lastseen *)b;

        ovl_store_le64(w->last_seen_le, p->last_seen);
        return 0;
    }
    case OVL_R_ROOM: {
        struct ovl_recw_room *w = (struct ovl_recw_room *)b;

        if (p->naddr == 0)
            return -EINVAL;
        w->naddr = p->naddr;
        ovl_store_be16(w->tcp_port_be, p->tcp_port);
        return write_addrs(b + sizeof(*w), p->addrs, p->naddr);
    }
    default:
        return -EINVAL;
    }
}

int ovl_record_build(uint8_t *out, size_t cap,
                     const struct ovl_record_params *p,
                     const struct ovl_identity *owner)
{
    struct ovl_recw_head *h = (struct ovl_recw_head *)out;
    size_t blen, len, off;

    if (out == NULL || p == NULL || owner == NULL ||
        !ovl_name_valid(p->name, p->name_len) || p->seq == 0 ||
        p->expires <= p->issued || p->naddr > OVL_PRESENCE_ADDRS_MAX ||
        (p->naddr && p->addrs == NULL) ||
        (p->type != OVL_R_PRESENCE && p->type != OVL_R_LASTSEEN &&
         p->type != OVL_R_ROOM))
        return -EINVAL;
    blen = body_len(p);
    len = HEAD + p->name_len + blen + (p->cert ? OVL_CERT_LEN : 0) +
          OVL_SIG_LEN;
    if (len > OVL_RECORD_MAX)
        return -EINVAL;
    if (cap < len)
        return -ENOBUFS;
    memset(out, 0, len);
    h->version = OVL_MSG_VERSION;
    h->type = p->type;
    h->flags = p->cert ? OVL_RF_HAS_CERT : 0;
    h->name_len = (uint8_t)p->name_len;
    ovl_store_le64(h->seq_le, p->seq);
    ovl_store_le64(h->issued_le, p->issued);
    ovl_store_le64(h->expires_le, p->expires);
    memcpy(h->owner, owner->ed_pk, OVL_ED_PK_LEN);
    h->body_len_le[0] = (uint8_t)blen;
    h->body_len_le[1] = (uint8_t)(blen >> 8);
    off = HEAD;
    memcpy(out + off, p->name, p->name_len);
    off += p->name_len;
    if (write_body(out + off, p) != 0)
        return -EINVAL;
    off += blen;
    if (p->cert) {
        memcpy(out + off, p->cert, OVL_CERT_LEN);
        off += OVL_CERT_LEN;
    }
    sign_ctx(out + off, RECORD_CONTEXT, out, off, owner);
    return (int)len;
}

int ovl_record_attest(uint8_t *out, size_t cap, const uint8_t *presence,
                      size_t presence_len, uint64_t last_seen,
                      const struct ovl_identity *supernode)
{
    struct ovl_recw_head *h = (struct ovl_recw_head *)out;
    struct ovl_recw_lastseen *b;
    struct ovl_record p;
    size_t len, off;

    if (out == NULL || supernode == NULL ||
        ovl_record_parse(&p, presence, presence_len) != 0 ||
        p.type != OVL_R_PRESENCE ||
        sodium_memcmp(p.supernode.identity, supernode->ed_pk,
                      OVL_ED_PK_LEN) != 0)
        return -EINVAL;
    len = HEAD + p.name_len + sizeof(*b) + presence_len + OVL_SIG_LEN;
    if (len > OVL_RECORD_MAX)
        return -EINVAL;
    if (cap < len)
        return -ENOBUFS;
    memset(out, 0, len);
    h->version = OVL_MSG_VERSION;
    h->type = OVL_R_LASTSEEN;
    h->flags = OVL_RF_ATTESTED;
    h->name_len = p.name_len;
    ovl_store_le64(h->seq_le, p.seq); /* ends exactly that presence */
    ovl_store_le64(h->issued_le, last_seen);
    ovl_store_le64(h->expires_le, last_seen + OVL_LASTSEEN_KEEP);
    memcpy(h->owner, p.owner, OVL_ED_PK_LEN);
    h->body_len_le[0] = (uint8_t)(sizeof(*b) + presence_len);
    h->body_len_le[1] = (uint8_t)((sizeof(*b) + presence_len) >> 8);
    off = HEAD;
    memcpy(out + off, p.name, p.name_len);
    off += p.name_len;
    b = (struct ovl_recw_lastseen *)(out + off);
    ovl_store_le64(b->last_seen_le, last_seen);
    b->presence_len_le[0] = (uint8_t)presence_len;
    b->presence_len_le[1] = (uint8_t)(presence_len >> 8);
    off += sizeof(*b);
    memcpy(out + off, presence, presence_len);
    off += presence_len;
    sign_ctx(out + off, RECORD_CONTEXT, out, off, supernode);
    return (int)len;
}

/* ---- Parsing --------------------------------------------------------------------- */

static int read_addrs(struct ovl_record *r, const uint8_t *at, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ovl_addr_decode(&r->addrs[i],
                            at + i * sizeof(struct ovl_msgw_addr), false))
            return -EBADMSG;
    r->naddr = (uint8_t)n;
    return 0;
}

static int parse_body(struct ovl_record *r, const uint8_t *b, size_t blen)
{
    switch (r->type) {
    case OVL_R_PRESENCE: {
        const struct ovl_recw_presence *w = (const void *)b;

        if (blen < sizeof(*w) || w->naddr > OVL_PRESENCE_ADDRS_MAX ||
            blen != sizeof(*w) + w->naddr * sizeof(struct ovl_msgw_addr) ||
            w->role > OVL_ROLE__MAX ||
            !sodium_is_zero(w->reserved, sizeof(w->reserved)) ||
            ovl_contact_decode(&r->supernode, &w->supernode) != 0 ||
            (r->flags & OVL_RF_ATTESTED))
            return -EBADMSG;
        r->role = w->role;
        return read_addrs(r, b + sizeof(*w), w->naddr);
    }
    case OVL_R_LASTSEEN: {
        const struct ovl_recw_lastseen *w = (const void *)b;
        size_t plen;

        if (blen < sizeof(*w) ||
            !sodium_is_zero(w->reserved, sizeof(w->reserved)))
            return -EBADMSG;
        r->last_seen = ovl_load_le64(w->last_seen_le);
        plen = (size_t)w->presence_len_le[0] |
               (size_t)w->presence_len_le[1] << 8;
        if (blen != sizeof(*w) + plen ||
            !(r->flags & OVL_RF_ATTESTED) != (plen == 0) ||
            ((r->flags & OVL_RF_ATTESTED) && (r->flags & OVL_RF_HAS_CERT)))
            return -EBADMSG;
        if (plen) {
            r->presence = b + sizeof(*w);
            r->presence_len = (uint16_t)plen;
        }
        return 0;
    }
    case OVL_R_ROOM: {
        const struct ovl_recw_room *w = (const void *)b;

        if (blen < sizeof(*w) || w->naddr == 0 ||
            w->naddr > OVL_PRESENCE_ADDRS_MAX ||
            blen != sizeof(*w) + w->naddr * sizeof(struct ovl_msgw_addr) ||
            !sodium_is_zero(w->reserved, sizeof(w->reserved)) ||
            !sodium_is_zero(w->reserved2, sizeof(w->reserved2)) ||
            (r->flags & OVL_RF_ATTESTED))
            return -EBADMSG;
        r->tcp_port = ovl_load_be16(w->tcp_port_be);
        return read_addrs(r, b + sizeof(*w), w->naddr);
    }
    default:
        return -EBADMSG;
    }
}

int ovl_record_parse(struct ovl_record *r, const uint8_t *buf, size_t len)
{
    const struct ovl_recw_head *h = (const struct ovl_recw_head *)buf;
    size_t blen, off, need;

    if (r == NULL)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    if (buf == NULL || len < OVL_RECORD_MIN || len > OVL_RECORD_MAX ||
        h->version != OVL_MSG_VERSION || (h->flags & ~OVL_RF_KNOWN) ||
        !sodium_is_zero(h->reserved, sizeof(h->reserved)))
        return -EBADMSG;
    r->type = h->type;
    r->flags = h->flags;
    r->seq = ovl_load_le64(h->seq_le);
    r->issued = ovl_load_le64(h->issued_le);
    r->expires = ovl_load_le64(h->expires_le);
    memcpy(r->owner, h->owner, OVL_ED_PK_LEN);
    r->name_len = h->name_len;
    blen = (size_t)h->body_len_le[0] | (size_t)h->body_len_le[1] << 8;
    /* Every part must fit exactly: head, name, body, cert, signature. */
    need = HEAD + (size_t)h->name_len + blen +
           ((h->flags & OVL_RF_HAS_CERT) ? OVL_CERT_LEN : 0) + OVL_SIG_LEN;
    if (need != len || r->seq == 0 || r->expires <= r->issued ||
        !ovl_name_valid((const char *)buf + HEAD, h->name_len))
        return -EBADMSG;
    memcpy(r->name, buf + HEAD, h->name_len);
    r->name[h->name_len] = '\0';
    off = HEAD + h->name_len;
    if (parse_body(r, buf + off, blen) != 0)
        return -EBADMSG;
    off += blen;
    if (h->flags & OVL_RF_HAS_CERT) {
        r->cert = buf + off;
        off += OVL_CERT_LEN;
    }
    ovl_record_key(r->key, r->type, r->name, r->name_len);
    r->signer = r->owner; /* ATTESTED: fixed up by verify */
    r->raw = buf;
    r->raw_len = len;
    return 0;
}

/* ---- Verification ------------------------------------------------------------------ */

static uint64_t ttl_max(uint8_t type)
{
    switch (type) {
    case OVL_R_PRESENCE:
        return OVL_PRESENCE_TTL_MAX;
    case OVL_R_LASTSEEN:
        return OVL_LASTSEEN_TTL_MAX;
    default:
        return OVL_ROOM_TTL_MAX;
    }
}

static int fail(enum ovl_rerr *why, enum ovl_rerr e)
{
    if (why)
        *why = e;
    return -EBADMSG;
}

/* Checks the certificate @cert (may be NULL) for @r under @pol. */
static int check_cert(const struct ovl_record *r, const uint8_t *cert,
                      const struct ovl_record_policy *pol, uint64_t now_s,
                      enum ovl_rerr *why)
{
    struct ovl_cert c;

    if (pol == NULL || pol->authority == NULL)
        return 0; /* carried certificates are not checked without one */
    if (cert == NULL)
        return fail(why, OVL_RERR_CERT_MISSING);
    if (ovl_cert_verify(&c, cert, OVL_CERT_LEN, pol->authority, now_s, why))
        return -EBADMSG;
    if (!ovl_cert_matches(&c, cert_kind_of(r->type), r->name, r->name_len,
                          r->owner))
        return fail(why, OVL_RERR_CERT_MISMATCH);
    return 0;
}

/* The embedded presence of an attested LASTSEEN: a well-signed PRESENCE
 * (its own expiry does not matter: it may have lapsed since) of the same
 * owner, name and seq, and a last-seen time within its life. */
static int check_attest(struct ovl_record *r,
                        const struct ovl_record_policy *pol, uint64_t now_s,
                        enum ovl_rerr *why)
{
    struct ovl_record p;

    if (ovl_record_parse(&p, r->presence, r->presence_len) != 0 ||
        p.type != OVL_R_PRESENCE)
        return fail(why, OVL_RERR_ATTEST);
    if (!verify_ctx(p.raw + p.raw_len - OVL_SIG_LEN, RECORD_CONTEXT, p.raw,
                    p.raw_len - OVL_SIG_LEN, p.owner))
        return fail(why, OVL_RERR_SIGNATURE);
    if (sodium_memcmp(p.owner, r->owner, OVL_ED_PK_LEN) != 0 ||
        p.seq != r->seq || p.name_len != r->name_len ||
        memcmp(p.name, r->name, r->name_len) != 0 ||
        r->last_seen < p.issued || r->last_seen > p.expires ||
        r->issued != r->last_seen)
        return fail(why, OVL_RERR_ATTEST);
    /* Certificate validity is judged at the time the presence was made. */
    if (check_cert(&p, p.cert, pol, p.issued, why) != 0)
        return -EBADMSG;
    (void)now_s;
    r->signer = r->presence + (sizeof(struct ovl_recw_head) + p.name_len);
    /* = the supernode contact's identity: first field of the presence
     * body (struct ovl_recw_presence.supernode.identity). */
    return 0;
}

int ovl_record_verify(struct ovl_record *r, const uint8_t *buf, size_t len,
                      const struct ovl_record_policy *pol, uint64_t now_s,
                      enum ovl_rerr *why)
{
    if (why)
        *why = OVL_RERR_NONE;
    if (ovl_record_parse(r, buf, len) != 0)
        return fail(why, OVL_RERR_LAYOUT);
    /* Cheap checks before any signature: a flood of stale or absurd
     * records costs no Ed25519 verification. */
    if (r->issued > now_s + OVL_CLOCK_SKEW)
        return fail(why, OVL_RERR_FUTURE);
    if (r->expires - r->issued > ttl_max(r->type))
        return fail(why, OVL_RERR_LIFETIME);
    if (r->expires <= now_s)
        return fail(why, OVL_RERR_EXPIRED);
    /* A certificate must have been valid when the record was issued; the
     * lifetime bound above keeps that at most a day in the past. */
    if (r->flags & OVL_RF_ATTESTED) {
        if (check_attest(r, pol, now_s, why) != 0)
            return -EBADMSG;
    } else if (check_cert(r, r->cert, pol, r->issued, why) != 0) {
        return -EBADMSG;
    }
    if (!verify_ctx(buf + len - OVL_SIG_LEN, RECORD_CONTEXT, buf,
                    len - OVL_SIG_LEN, r->signer))
        return fail(why, OVL_RERR_SIGNATURE);
    return 0;
}

bool ovl_record_newer(const struct ovl_record *a, const struct ovl_record *b)
{
    size_t n;
    int c;

    if (a->seq != b->seq)
        return a->seq > b->seq;
    if (a->type != b->type)
        return a->type == OVL_R_LASTSEEN;
    n = a->raw_len < b->raw_len ? a->raw_len : b->raw_len;
    c = memcmp(a->raw, b->raw, n);
    if (c != 0)
        return c > 0;
    return a->raw_len > b->raw_len;
}

/* ---- certificate files ---- */

int ovl_cert_read_file(const char *path, uint8_t cert[OVL_CERT_LEN],
                       char *why, size_t whylen)
{
    /* Raw bytes or base64url of them, plus a line end: anything longer is
     * not a certificate, and reading stops there. */
    char buf[2 * OVL_CERT_LEN + 8];
    size_t len, bin = 0;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        int e = errno;

        snprintf(why, whylen, "%s: %s", path, strerror(e));
        return -e;
    }
    len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    if (len == OVL_CERT_LEN) {
        memcpy(cert, buf, OVL_CERT_LEN);
        return 0;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    buf[len] = '\0';
    if (sodium_base642bin(cert, OVL_CERT_LEN, buf, len, NULL, &bin, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        bin != OVL_CERT_LEN) {
        snprintf(why, whylen, "%s: not a certificate (%d bytes, or their base64url text)",
                 path, OVL_CERT_LEN);
        return -EBADMSG;
    }
    return 0;
}
