/*
 * ovl_record.h: signed overlay records and authority certificates.
 *
 * Layouts are in ovl_msg.h (struct ovl_recw_*, struct ovl_certw), the
 * rules in prose in docs/protocol.md part 2.
 *
 * Records
 * -------
 *  PRESENCE  handle -> the owner's node (its Ed25519 key is the record's
 *            owner), reachable addresses and the supernode it is attached
 *            to: "online". Signed by the owner.
 *  LASTSEEN  handle -> "offline since T". Signed by the owner when it logs
 *            out, or ATTESTED: signed by the supernode named in the
 *            owner's latest presence record (embedded whole), when the
 *            owner vanished without logging out.
 *  ROOM      room name -> the bridge (the owner) and its addresses.
 *
 * Every record has a sequence number (newer wins), an issue time and an
 * expiry (Unix seconds; the DHT drops it after expiry). Its DHT key is
 * derived from its type and name (ovl_record_key), so a record can never
 * be filed under another name. Ordering (ovl_record_newer): higher seq
 * wins; at equal seq a LASTSEEN beats a PRESENCE (an attestation ends the
 * presence it embeds, which has the same seq); at equal seq and type the
 * bytes decide, so that every replica converges on the same version.
 *
 * Handles and the login authority
 * -------------------------------
 * An identity is self-certifying (its key is its name in the DHT); a
 * handle is a claim signed by that key (the record's signature). With a
 * login authority configured (an Ed25519 public key), a claim must also
 * carry a certificate from the authority binding (kind, name) to the
 * owner's key: supernodes refuse logins and stores without one. Without
 * an authority handles are first come, first served: a storage node keeps
 * the owner of a live record and refuses a different owner until that
 * record expires (docs/protocol.md, "Ownership").
 *
 * Thread: any. Functions touch only their arguments.
 */
#ifndef OVL_RECORD_H
#define OVL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_identity.h"
#include "ovl_msg.h"

/* Lifetimes and tolerances (seconds). */
enum {
    OVL_PRESENCE_TTL = 3600,             /* default presence lifetime */
    OVL_PRESENCE_TTL_MAX = 2 * 3600,
    OVL_LASTSEEN_KEEP = 72 * 3600,       /* "offline, last seen T" kept */
    OVL_LASTSEEN_TTL_MAX = 73 * 3600,
    OVL_ROOM_TTL = 6 * 3600,
    OVL_ROOM_TTL_MAX = 24 * 3600,
    OVL_CLOCK_SKEW = 300,                /* issue times this far ahead OK */
};

/* Why a record or certificate was refused. */
enum ovl_rerr {
    OVL_RERR_NONE = 0,
    OVL_RERR_LAYOUT,        /* malformed: lengths, reserved, bad name ... */
    OVL_RERR_SIGNATURE,     /* signature does not verify (forged/tampered) */
    OVL_RERR_EXPIRED,       /* expires <= now */
    OVL_RERR_FUTURE,        /* issued more than OVL_CLOCK_SKEW ahead */
    OVL_RERR_LIFETIME,      /* expires too far after issued for its type */
    OVL_RERR_ATTEST,        /* attested LASTSEEN inconsistent with the
                               presence record it embeds */
    OVL_RERR_CERT_MISSING,  /* authority configured, no certificate */
    OVL_RERR_CERT_INVALID,  /* certificate malformed or badly signed, or
                               from another authority */
    OVL_RERR_CERT_MISMATCH, /* certificate for another name, kind or key */
    OVL_RERR_CERT_EXPIRED,  /* outside not_before .. not_after */
    OVL_RERR__COUNT
};

const char *ovl_rerr_name(enum ovl_rerr e);

/* ------------------------------------------------------------------------
 * Authority certificates
 * ------------------------------------------------------------------------ */

struct ovl_cert {
    uint8_t kind;                     /* enum ovl_cert_kind */
    uint8_t name_len;
    char name[OVL_NAME_MAX + 1];      /* NUL-terminated */
    uint8_t subject[OVL_ED_PK_LEN];
    uint64_t not_before, not_after;   /* Unix seconds */
    uint8_t authority[OVL_ED_PK_LEN];
};

/* Writes an OVL_CERT_LEN-byte certificate signed by @authority. Returns 0
 * or -EINVAL (bad kind, name or times). */
int ovl_cert_sign(uint8_t out[OVL_CERT_LEN],
                  const struct ovl_identity *authority,
                  const struct ovl_cert *c);

/* Parses and verifies a certificate: layout, signature by the key in its
 * authority field, which must equal @authority_pk (if not NULL), and
 * validity at @now_s. Returns 0 or -EBADMSG with the reason in *why. */
int ovl_cert_verify(struct ovl_cert *out, const uint8_t *buf, size_t len,
                    const uint8_t *authority_pk, uint64_t now_s,
                    enum ovl_rerr *why);

/* Reads a certificate file: the OVL_CERT_LEN raw bytes chorus-authority
 * writes with --out, or the base64url line it prints without (trailing
 * blanks allowed). Only reads: verify with ovl_cert_verify. Returns 0, or
 * a negative errno with "PATH: reason" in @why. */
int ovl_cert_read_file(const char *path, uint8_t cert[OVL_CERT_LEN],
                       char *why, size_t whylen);

/* Checks that @c (verified) certifies @kind/@name for @subject. */
bool ovl_cert_matches(const struct ovl_cert *c, uint8_t kind,
                      const char *name, size_t name_len,
                      const uint8_t subject[OVL_ED_PK_LEN]);

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */

/* A parsed record. Pointers point into the buffer it was parsed from. */
struct ovl_record {
    uint8_t type;                  /* enum ovl_rtype */
    uint8_t flags;                 /* OVL_RF_* */
    uint64_t seq, issued, expires;
    uint8_t owner[OVL_ED_PK_LEN];
    uint8_t name_len;
    char name[OVL_NAME_MAX + 1];
    uint8_t key[OVL_KEY_LEN_DHT];  /* ovl_record_key(type, name) */
    /* PRESENCE */
    struct ovl_contact supernode;
    uint8_t role;
    /* PRESENCE and ROOM */
    uint8_t naddr;
    struct ovl_addr addrs[OVL_PRESENCE_ADDRS_MAX];
    uint16_t tcp_port;             /* ROOM */
    /* LASTSEEN */
    uint64_t last_seen;
    const uint8_t *presence;       /* ATTESTED: the embedded record */
    uint16_t presence_len;
    /* common */
    const uint8_t *cert;           /* HAS_CERT: OVL_CERT_LEN bytes */
    const uint8_t *signer;         /* owner, or the attesting supernode */
    const uint8_t *raw;            /* the whole record */
    size_t raw_len;
};

/* What a record to build says. Zero fields mean "not for this type". */
struct ovl_record_params {
    uint8_t type;
    const char *name;
    size_t name_len;
    uint64_t seq, issued, expires;
    const uint8_t *cert;                  /* OVL_CERT_LEN bytes or NULL */
    const struct ovl_contact *supernode;  /* PRESENCE */
    uint8_t role;                         /* PRESENCE */
    const struct ovl_addr *addrs;         /* PRESENCE (0..4), ROOM (1..4) */
    uint8_t naddr;
    uint16_t tcp_port;                    /* ROOM */
    uint64_t last_seen;                   /* LASTSEEN */
};

/* What a verifier accepts. */
struct ovl_record_policy {
    const uint8_t *authority;  /* login authority key, or NULL */
};

/* The DHT key of (@type, @name): BLAKE2b-256 of a 16-byte label ("chorus
 * handle" for PRESENCE and LASTSEEN, "chorus room" for ROOM, NUL-padded)
 * followed by the name. */
void ovl_record_key(uint8_t key[OVL_KEY_LEN_DHT], uint8_t type,
                    const char *name, size_t name_len);

/* Builds and signs a record owned by @owner (PRESENCE, owner-signed
 * LASTSEEN, ROOM). Returns the length, -EINVAL or -ENOBUFS. */
int ovl_record_build(uint8_t *out, size_t cap,
                     const struct ovl_record_params *p,
                     const struct ovl_identity *owner);

/*
 * Builds an ATTESTED LASTSEEN for the owner of @presence (a PRESENCE
 * naming @supernode as its supernode): "last seen at @last_seen",
 * expiring @last_seen + OVL_LASTSEEN_KEEP, signed by @supernode. Returns
 * the length, -EINVAL (not such a presence record) or -ENOBUFS.
 */
int ovl_record_attest(uint8_t *out, size_t cap, const uint8_t *presence,
                      size_t presence_len, uint64_t last_seen,
                      const struct ovl_identity *supernode);

/* Parses the layout only (no signature, times or certificate). Returns 0
 * or -EBADMSG. */
int ovl_record_parse(struct ovl_record *r, const uint8_t *buf, size_t len);

/*
 * Parses and fully verifies a record at @now_s: layout, signature (and
 * for ATTESTED the embedded presence and its consistency), issue time,
 * expiry and lifetime, and under an authority the certificate. Returns 0
 * or -EBADMSG with the reason in *why (may be NULL).
 */
int ovl_record_verify(struct ovl_record *r, const uint8_t *buf, size_t len,
                      const struct ovl_record_policy *pol, uint64_t now_s,
                      enum ovl_rerr *why);

/* True if @a should replace @b for the same key (see the file comment). */
bool ovl_record_newer(const struct ovl_record *a, const struct ovl_record *b);

#endif /* OVL_RECORD_H */
