/*
 * fuzz_ovl_record.c: libFuzzer target for signed records and
 * certificates (ovl_record_parse, ovl_record_verify, ovl_cert_verify,
 * ovl_record_newer; ovl_record.h), in the fixed world of
 * fuzz_ovl_dir_common.h.
 *
 * Input: byte 0 says how the rest (one record) is checked:
 *   bit 0    under T's login authority (else none)
 *   bit 1    re-sign a carried certificate with T, as if T had issued it
 *   bit 2    re-sign the presence embedded in an attested LASTSEEN with
 *            A's key (when A owns it)
 *   bit 3    re-sign the record with its signer's key (A, or S for an
 *            attestation) when the fuzz world holds that key
 *   bits 4-5 verification time: issue + {10 s, 1 h 10 s, 7 h, 73 h}
 * The re-signing bits let mutations get past the signatures into the
 * checks behind them, as an owner (or authority) that signs junk could.
 *
 * Checks beyond "no crash, no sanitizer report":
 *  - a refusal names a reason; a record that verifies also parses, with
 *    the same fields, and is live at the verification time;
 *  - its DHT key is the key of its type and name;
 *  - a verified record is canonical: building it again from its parsed
 *    fields with the signer's key (ovl_record_build, or ovl_record_attest
 *    for an attestation, whose expiry the attester may choose) gives
 *    exactly the input bytes;
 *  - ordering is a strict order: never a > a, never both a > b and
 *    b > a against a reference record of the same name.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; otherwise
 * tests/fuzz/fuzz_replay.c replays tests/fuzz/corpus/ovl_record (made by
 * ovl_dir_seeds).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ovl_dir_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SIGN_CTX "chorus record v1"
#define CERT_CTX "chorus cert v1\0\0"

static const uint64_t offsets[4] = {10, 3610, 7 * 3600, 73 * 3600};

static void sign_ctx(uint8_t *sig, const char *ctx, const uint8_t *msg,
                     size_t len, const struct ovl_identity *id)
{
    uint8_t buf[16 + OVL_RECORD_MAX];

    FZD_CHECK(len <= OVL_RECORD_MAX);
    memcpy(buf, ctx, 16);
    memcpy(buf + 16, msg, len);
    crypto_sign_detached(sig, NULL, buf, 16 + len, id->ed_sk);
}

/* The fuzz world's identity with public key @pk, or NULL. */
static const struct ovl_identity *holder(const uint8_t *pk)
{
    const struct fzd *w = fzd_world();

    if (memcmp(pk, w->a.ed_pk, 32) == 0)
        return &w->a;
    if (memcmp(pk, w->s.ed_pk, 32) == 0)
        return &w->s;
    return NULL;
}

/* Applies the re-signing bits of @mode to @rec in place. */
static void resign(uint8_t *rec, size_t len, uint8_t mode)
{
    const struct fzd *w = fzd_world();
    const struct ovl_identity *id;
    struct ovl_record r, p;

    if (ovl_record_parse(&r, rec, len) != 0)
        return;
    if ((mode & 2) && r.cert) {
        uint8_t *c = rec + (r.cert - rec);
        sign_ctx(c + OVL_CERT_SIGNED_LEN, CERT_CTX, c, OVL_CERT_SIGNED_LEN,
                 &w->t);
    }
    if ((mode & 4) && r.presence &&
        ovl_record_parse(&p, r.presence, r.presence_len) == 0 &&
        (id = holder(p.owner)) != NULL) {
        uint8_t *e = rec + (r.presence - rec);
        if (p.cert && (mode & 2))
            sign_ctx(e + (p.cert - r.presence) + OVL_CERT_SIGNED_LEN,
                     CERT_CTX, e + (p.cert - r.presence),
                     OVL_CERT_SIGNED_LEN, &w->t);
        sign_ctx(e + r.presence_len - OVL_SIG_LEN, SIGN_CTX, e,
                 r.presence_len - OVL_SIG_LEN, id);
    }
    if (mode & 8) {
        /* The signer of an attestation is the supernode its embedded
         * presence names; otherwise the owner. */
        const uint8_t *signer = r.owner;
        if (r.presence &&
            ovl_record_parse(&p, r.presence, r.presence_len) == 0)
            signer = p.supernode.identity;
        if ((id = holder(signer)) != NULL)
            sign_ctx(rec + len - OVL_SIG_LEN, SIGN_CTX, rec,
                     len - OVL_SIG_LEN, id);
    }
}

/* Builds the verified record @r again with its signer's key and checks
 * the bytes are the same. */
static void check_canonical(const struct ovl_record *r)
{
    const struct ovl_identity *id = holder(r->signer);
    static uint8_t out[OVL_RECORD_MAX];
    struct ovl_record_params p;
    int len;

    if (id == NULL)
        return;
    if (r->flags & OVL_RF_ATTESTED) {
        /* ovl_record_attest always writes last_seen + OVL_LASTSEEN_KEEP;
         * the format lets the attesting supernode pick any expiry within
         * the LASTSEEN lifetime, as an owner picks its own. */
        len = ovl_record_attest(out, sizeof(out), r->presence,
                                r->presence_len, r->last_seen, id);
        FZD_CHECK(len == (int)r->raw_len);
        memcpy(((struct ovl_recw_head *)out)->expires_le,
               ((const struct ovl_recw_head *)r->raw)->expires_le, 8);
        sign_ctx(out + len - OVL_SIG_LEN, SIGN_CTX, out,
                 (size_t)len - OVL_SIG_LEN, id);
    } else {
        memset(&p, 0, sizeof(p));
        p.type = r->type;
        p.name = r->name;
        p.name_len = r->name_len;
        p.seq = r->seq;
        p.issued = r->issued;
        p.expires = r->expires;
        p.cert = r->cert;
        p.supernode = &r->supernode;
        p.role = r->role;
        p.addrs = r->addrs;
        p.naddr = r->naddr;
        p.tcp_port = r->tcp_port;
        p.last_seen = r->last_seen;
        len = ovl_record_build(out, sizeof(out), &p, id);
    }
    FZD_CHECK(len == (int)r->raw_len);
    FZD_CHECK(memcmp(out, r->raw, r->raw_len) == 0);
}

static void check_order(const struct ovl_record *r)
{
    static uint8_t ref_buf[OVL_RECORD_MAX];
    struct ovl_record ref;
    size_t len;

    FZD_CHECK(!ovl_record_newer(r, r));
    len = fzd_record(ref_buf, r->type == OVL_R_ROOM ? FZD_ROOM : FZD_PRESENCE,
                     r->seq);
    FZD_CHECK(ovl_record_parse(&ref, ref_buf, len) == 0);
    FZD_CHECK(!(ovl_record_newer(r, &ref) && ovl_record_newer(&ref, r)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fzd *w = fzd_world();
    static uint8_t rec[OVL_RECORD_MAX + 64];
    struct ovl_record_policy pol = {NULL};
    struct ovl_record r, parsed;
    uint8_t key[OVL_KEY_LEN_DHT];
    enum ovl_rerr why;
    uint64_t now_s;
    size_t len;
    uint8_t mode;
    int rc;

    if (size < 1 || size - 1 > sizeof(rec))
        return 0;
    mode = data[0];
    len = size - 1;
    memcpy(rec, data + 1, len);
    resign(rec, len, mode);
    if (mode & 1)
        pol.authority = w->t.ed_pk;
    now_s = FZD_ISSUED + offsets[(mode >> 4) & 3];

    rc = ovl_record_verify(&r, rec, len, &pol, now_s, &why);
    if (rc != 0) {
        FZD_CHECK(rc == -EBADMSG);
        FZD_CHECK(why > OVL_RERR_NONE && why < OVL_RERR__COUNT);
        FZD_CHECK(strcmp(ovl_rerr_name(why), "?") != 0);
        if (why != OVL_RERR_LAYOUT)
            FZD_CHECK(ovl_record_parse(&parsed, rec, len) == 0);
        return 0;
    }
    FZD_CHECK(why == OVL_RERR_NONE);
    FZD_CHECK(ovl_record_parse(&parsed, rec, len) == 0);
    FZD_CHECK(parsed.seq == r.seq && parsed.type == r.type &&
              parsed.expires == r.expires && parsed.raw_len == len);
    FZD_CHECK(r.seq != 0 && r.expires > now_s &&
              r.issued <= now_s + OVL_CLOCK_SKEW);
    FZD_CHECK(r.naddr <= OVL_PRESENCE_ADDRS_MAX);
    FZD_CHECK(strlen(r.name) == r.name_len);
    ovl_record_key(key, r.type, r.name, r.name_len);
    FZD_CHECK(memcmp(key, r.key, sizeof(key)) == 0);
    if (r.cert) {
        struct ovl_cert c;
        (void)ovl_cert_verify(&c, r.cert, OVL_CERT_LEN, pol.authority, now_s,
                              &why);
    }
    check_canonical(&r);
    check_order(&r);
    return 0;
}
