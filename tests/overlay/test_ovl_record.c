/*
 * test_ovl_record.c: signed records and authority certificates
 * (ovl_record.h): building and verifying each type, a table of forged,
 * tampered, expired, premature and over-long records, the ordering rule
 * (sequence numbers, LASTSEEN over PRESENCE, convergence), attestations
 * by the right and the wrong supernode, and the login authority's checks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <sodium.h>

#include "ovl_record.h"

#define NOW 1704067200ull /* 2024-01-01 */

static struct ovl_identity alice, mallory, sn, sn2, authority, other_auth;
static struct ovl_contact sn_contact;

static void ident(struct ovl_identity *id, uint8_t seed)
{
    uint8_t s[32];

    memset(s, seed, sizeof(s));
    cr_assert_eq(ovl_identity_from_seed(id, s), 0);
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    ident(&alice, 1);
    ident(&mallory, 2);
    ident(&sn, 3);
    ident(&sn2, 4);
    ident(&authority, 5);
    ident(&other_auth, 6);
    memset(&sn_contact, 0, sizeof(sn_contact));
    memcpy(sn_contact.identity, sn.ed_pk, 32);
    ovl_node_id(sn_contact.node_id, sn.ed_pk);
    ovl_addr_v4(&sn_contact.udp, 0x01020304u, 4000);
    sn_contact.tcp_port = 4000;
}

TestSuite(record, .init = setup);

static int cert_for(uint8_t *out, const struct ovl_identity *auth,
                    uint8_t kind, const char *name,
                    const struct ovl_identity *subject, uint64_t nb,
                    uint64_t na)
{
    struct ovl_cert c = {0};

    c.kind = kind;
    c.name_len = (uint8_t)strlen(name);
    strcpy(c.name, name);
    memcpy(c.subject, subject->ed_pk, 32);
    c.not_before = nb;
    c.not_after = na;
    return ovl_cert_sign(out, auth, &c);
}

/* A presence of "alice" owned by @owner with @seq, optional cert. */
static int presence(uint8_t *out, const struct ovl_identity *owner,
                    uint64_t seq, uint64_t issued, uint64_t ttl,
                    const uint8_t *cert)
{
    struct ovl_addr addrs[2];
    struct ovl_record_params p = {0};

    ovl_addr_v4(&addrs[0], 0xC0A80002u, 4000);
    ovl_addr_v4(&addrs[1], 0x05060708u, 61000);
    p.type = OVL_R_PRESENCE;
    p.name = "alice";
    p.name_len = 5;
    p.seq = seq;
    p.issued = issued;
    p.expires = issued + ttl;
    p.cert = cert;
    p.supernode = &sn_contact;
    p.addrs = addrs;
    p.naddr = 2;
    return ovl_record_build(out, OVL_RECORD_MAX, &p, owner);
}

Test(record, build_and_verify_each_type)
{
    uint8_t buf[OVL_RECORD_MAX], att[OVL_RECORD_MAX];
    struct ovl_record r;
    struct ovl_record_params p = {0};
    struct ovl_addr a;
    enum ovl_rerr why;
    int len, alen;

    len = presence(buf, &alice, 7, NOW, OVL_PRESENCE_TTL, NULL);
    cr_assert_gt(len, 0);
    cr_assert_eq(ovl_record_verify(&r, buf, (size_t)len, NULL, NOW, &why), 0,
                 "%s", ovl_rerr_name(why));
    cr_expect_eq(r.type, OVL_R_PRESENCE);
    cr_expect_eq(r.seq, 7u);
    cr_expect_str_eq(r.name, "alice");
    cr_expect_eq(r.naddr, 2);
    cr_expect_eq(r.addrs[1].port, 61000);
    cr_expect_eq(memcmp(r.supernode.identity, sn.ed_pk, 32), 0);
    cr_expect_eq(memcmp(r.owner, alice.ed_pk, 32), 0);
    uint8_t key[32];
    ovl_record_key(key, OVL_R_PRESENCE, "alice", 5);
    cr_expect_eq(memcmp(r.key, key, 32), 0);
    ovl_record_key(key, OVL_R_ROOM, "alice", 5);
    cr_expect_neq(memcmp(r.key, key, 32), 0, "room and handle keys differ");

    /* Owner-signed LASTSEEN (logout). */
    p.type = OVL_R_LASTSEEN;
    p.name = "alice";
    p.name_len = 5;
    p.seq = 8;
    p.issued = NOW;
    p.expires = NOW + OVL_LASTSEEN_KEEP;
    p.last_seen = NOW;
    len = ovl_record_build(buf, sizeof(buf), &p, &alice);
    cr_assert_gt(len, 0);
    cr_assert_eq(ovl_record_verify(&r, buf, (size_t)len, NULL, NOW, &why), 0,
                 "%s", ovl_rerr_name(why));
    cr_expect_eq(r.last_seen, NOW);
    cr_expect_null(r.presence);

    /* ROOM. */
    memset(&p, 0, sizeof(p));
    ovl_addr_v4(&a, 0x0A0B0C0Du, 33033);
    p.type = OVL_R_ROOM;
    p.name = "standup";
    p.name_len = 7;
    p.seq = 1;
    p.issued = NOW;
    p.expires = NOW + OVL_ROOM_TTL;
    p.addrs = &a;
    p.naddr = 1;
    p.tcp_port = 33033;
    len = ovl_record_build(buf, sizeof(buf), &p, &sn2);
    cr_assert_gt(len, 0);
    cr_assert_eq(ovl_record_verify(&r, buf, (size_t)len, NULL, NOW, &why), 0);
    cr_expect_eq(r.tcp_port, 33033);
    cr_expect(ovl_addr_eq(&r.addrs[0], &a));

    /* ATTESTED LASTSEEN by the supernode the presence names. */
    len = presence(buf, &alice, 9, NOW, OVL_PRESENCE_TTL, NULL);
    alen = ovl_record_attest(att, sizeof(att), buf, (size_t)len, NOW + 600,
                             &sn);
    cr_assert_gt(alen, 0);
    cr_assert_eq(ovl_record_verify(&r, att, (size_t)alen, NULL, NOW + 700,
                                   &why),
                 0, "%s", ovl_rerr_name(why));
    cr_expect_eq(r.type, OVL_R_LASTSEEN);
    cr_expect(r.flags & OVL_RF_ATTESTED);
    cr_expect_eq(r.seq, 9u);
    cr_expect_eq(r.last_seen, NOW + 600);
    cr_expect_eq(r.expires, NOW + 600 + OVL_LASTSEEN_KEEP);
    cr_expect_eq(memcmp(r.signer, sn.ed_pk, 32), 0);
    /* Still valid long after the embedded presence lapsed. */
    cr_expect_eq(ovl_record_verify(&r, att, (size_t)alen, NULL,
                                   NOW + 71 * 3600, &why),
                 0);
    cr_expect_eq(ovl_record_verify(&r, att, (size_t)alen, NULL,
                                   NOW + 600 + OVL_LASTSEEN_KEEP, &why),
                 -EBADMSG);
    cr_expect_eq(why, OVL_RERR_EXPIRED);
    /* Another supernode cannot attest it. */
    cr_expect_eq(ovl_record_attest(att, sizeof(att), buf, (size_t)len,
                                   NOW + 600, &sn2),
                 -EINVAL);
}

/* Tampering and time table: each case builds a fresh presence of seq 5
 * at NOW, applies a change, and checks the verdict at @now. */
struct tcase {
    const char *what;
    int off;       /* byte to flip (XOR 1); -1: none; -2: last (signature) */
    uint64_t issued_delta, ttl, now;
    enum ovl_rerr want;
};

Test(record, forged_tampered_and_time_table)
{
    static const struct tcase cases[] = {
        {"valid", -1, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_NONE},
        {"signature byte", -2, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_SIGNATURE},
        {"seq changed", 4, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_SIGNATURE},
        {"owner changed", 40, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_SIGNATURE},
        {"name changed", 64, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_SIGNATURE},
        {"address changed", 64 + 5 + 60 + 4, 0, OVL_PRESENCE_TTL, NOW,
         OVL_RERR_SIGNATURE},
        {"supernode key changed", 64 + 5, 0, OVL_PRESENCE_TTL, NOW,
         OVL_RERR_SIGNATURE},
        {"unknown flag", 2, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_LAYOUT},
        {"version", 0, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_LAYOUT},
        {"type 0", 1, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_LAYOUT},
        {"reserved", 62, 0, OVL_PRESENCE_TTL, NOW, OVL_RERR_LAYOUT},
        {"expired", -1, 0, OVL_PRESENCE_TTL, NOW + OVL_PRESENCE_TTL,
         OVL_RERR_EXPIRED},
        {"last second", -1, 0, OVL_PRESENCE_TTL, NOW + OVL_PRESENCE_TTL - 1,
         OVL_RERR_NONE},
        {"issued in the future", -1, OVL_CLOCK_SKEW + 1, OVL_PRESENCE_TTL, NOW,
         OVL_RERR_FUTURE},
        {"within skew", -1, OVL_CLOCK_SKEW, OVL_PRESENCE_TTL, NOW,
         OVL_RERR_NONE},
        {"lifetime too long", -1, 0, OVL_PRESENCE_TTL_MAX + 1, NOW,
         OVL_RERR_LIFETIME},
    };
    uint8_t buf[OVL_RECORD_MAX];
    struct ovl_record r;
    enum ovl_rerr why;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct tcase *c = &cases[i];
        int len = presence(buf, &alice, 5, NOW + c->issued_delta, c->ttl,
                           NULL);
        int rc;

        cr_assert_gt(len, 0, "case %zu", i);
        if (c->off == -2)
            buf[len - 1] ^= 1;
        else if (c->off >= 0)
            buf[c->off] ^= 1;
        rc = ovl_record_verify(&r, buf, (size_t)len, NULL, c->now, &why);
        cr_expect_eq(rc, c->want == OVL_RERR_NONE ? 0 : -EBADMSG,
                     "case %zu (%s)", i, c->what);
        cr_expect_eq(why, c->want, "case %zu (%s): %s", i, c->what,
                     ovl_rerr_name(why));
    }
}

Test(record, every_truncation_rejected)
{
    uint8_t buf[OVL_RECORD_MAX], att[OVL_RECORD_MAX];
    struct ovl_record r;
    int len = presence(buf, &alice, 5, NOW, 3600, NULL);
    int alen = ovl_record_attest(att, sizeof(att), buf, (size_t)len, NOW, &sn);

    for (int cut = 0; cut < len; cut++)
        cr_expect_eq(ovl_record_parse(&r, buf, (size_t)cut), -EBADMSG);
    for (int cut = 0; cut < alen; cut++)
        cr_expect_eq(ovl_record_parse(&r, att, (size_t)cut), -EBADMSG);
    cr_expect_eq(ovl_record_parse(&r, buf, (size_t)len), 0);
    cr_expect_eq(ovl_record_parse(&r, att, (size_t)alen), 0);
}

Test(record, forged_by_another_key)
{
    uint8_t buf[OVL_RECORD_MAX];
    struct ovl_record r;
    enum ovl_rerr why;
    int len = presence(buf, &mallory, 5, NOW, 3600, NULL);

    /* Mallory signs with her key but claims Alice as the owner. */
    memcpy(buf + offsetof(struct ovl_recw_head, owner), alice.ed_pk, 32);
    cr_expect_eq(ovl_record_verify(&r, buf, (size_t)len, NULL, NOW, &why),
                 -EBADMSG);
    cr_expect_eq(why, OVL_RERR_SIGNATURE);
}

Test(record, attestation_rules)
{
    uint8_t pres[OVL_RECORD_MAX], att[OVL_RECORD_MAX];
    struct ovl_record r;
    enum ovl_rerr why;
    int plen = presence(pres, &alice, 9, NOW, 3600, NULL);
    int alen = ovl_record_attest(att, sizeof(att), pres, (size_t)plen,
                                 NOW + 60, &sn);
    size_t body = 64 + 5, emb = body + 12;

    cr_assert_gt(alen, 0);
    /* Re-signed by another supernode over the same bytes: the signer is
     * the presence's supernode, so the signature fails. */
    {
        uint8_t ctx[16 + OVL_RECORD_MAX];
        memcpy(ctx, "chorus record v1", 16);
        memcpy(ctx + 16, att, (size_t)alen - 64);
        crypto_sign_detached(att + alen - 64, NULL, ctx,
                             16 + (size_t)alen - 64, sn2.ed_sk);
        cr_expect_eq(ovl_record_verify(&r, att, (size_t)alen, NULL, NOW + 60,
                                       &why),
                     -EBADMSG);
        cr_expect_eq(why, OVL_RERR_SIGNATURE);
    }
    /* Outer seq differs from the embedded presence's. */
    alen = ovl_record_attest(att, sizeof(att), pres, (size_t)plen, NOW + 60,
                             &sn);
    att[4] ^= 2;
    cr_expect_eq(ovl_record_verify(&r, att, (size_t)alen, NULL, NOW + 60,
                                   &why),
                 -EBADMSG);
    cr_expect_eq(why, OVL_RERR_ATTEST);
    /* The embedded presence tampered with. */
    alen = ovl_record_attest(att, sizeof(att), pres, (size_t)plen, NOW + 60,
                             &sn);
    att[emb + 64 + 5 + 40] ^= 1; /* inside its supernode address */
    cr_expect_eq(ovl_record_verify(&r, att, (size_t)alen, NULL, NOW + 60,
                                   &why),
                 -EBADMSG);
    cr_expect(why == OVL_RERR_SIGNATURE || why == OVL_RERR_ATTEST);
    /* A last-seen time outside the presence's life. */
    alen = ovl_record_attest(att, sizeof(att), pres, (size_t)plen,
                             NOW + 3601, &sn);
    cr_expect_eq(ovl_record_verify(&r, att, (size_t)alen, NULL, NOW + 3700,
                                   &why),
                 -EBADMSG);
    cr_expect_eq(why, OVL_RERR_ATTEST);
    (void)body;
}

Test(record, ordering_rule)
{
    uint8_t b5[OVL_RECORD_MAX], b6[OVL_RECORD_MAX], att[OVL_RECORD_MAX],
        b5b[OVL_RECORD_MAX];
    struct ovl_record r5, r6, ra, r5b;
    int l5 = presence(b5, &alice, 5, NOW, 3600, NULL);
    int l6 = presence(b6, &alice, 6, NOW, 3600, NULL);
    int la = ovl_record_attest(att, sizeof(att), b5, (size_t)l5, NOW + 1, &sn);
    int l5b = presence(b5b, &alice, 5, NOW + 1, 3600, NULL);

    cr_assert_eq(ovl_record_parse(&r5, b5, (size_t)l5), 0);
    cr_assert_eq(ovl_record_parse(&r6, b6, (size_t)l6), 0);
    cr_assert_eq(ovl_record_parse(&ra, att, (size_t)la), 0);
    cr_assert_eq(ovl_record_parse(&r5b, b5b, (size_t)l5b), 0);
    cr_expect(ovl_record_newer(&r6, &r5), "higher seq wins");
    cr_expect(!ovl_record_newer(&r5, &r6), "replayed older seq loses");
    cr_expect(ovl_record_newer(&ra, &r5), "attested lastseen ends seq 5");
    cr_expect(!ovl_record_newer(&r5, &ra), "seq 5 presence cannot revive");
    cr_expect(ovl_record_newer(&r6, &ra), "a new login beats the lastseen");
    cr_expect(!ovl_record_newer(&r5, &r5), "identical is not newer");
    /* Two different versions with one seq: exactly one wins, both ways. */
    cr_expect(ovl_record_newer(&r5, &r5b) != ovl_record_newer(&r5b, &r5));
}

Test(record, authority_certificates)
{
    uint8_t cert[OVL_CERT_LEN], buf[OVL_RECORD_MAX], att[OVL_RECORD_MAX];
    struct ovl_record_policy pol = {authority.ed_pk};
    struct ovl_record r;
    struct ovl_cert c;
    enum ovl_rerr why;
    int len;

    /* Valid: certified presence accepted; also by a node without policy. */
    cr_assert_eq(cert_for(cert, &authority, OVL_CERT_HANDLE, "alice", &alice,
                          NOW - 10, NOW + 86400),
                 0);
    cr_assert_eq(ovl_cert_verify(&c, cert, sizeof(cert), authority.ed_pk, NOW,
                                 &why),
                 0);
    cr_expect(ovl_cert_matches(&c, OVL_CERT_HANDLE, "alice", 5, alice.ed_pk));
    len = presence(buf, &alice, 5, NOW, 3600, cert);
    cr_assert_gt(len, 0);
    cr_expect_eq(ovl_record_verify(&r, buf, (size_t)len, &pol, NOW, &why), 0,
                 "%s", ovl_rerr_name(why));
    cr_expect_not_null(r.cert);
    cr_expect_eq(ovl_record_verify(&r, buf, (size_t)len, NULL, NOW, &why), 0);
    /* An attestation of a certified presence passes under the policy. */
    int alen = ovl_record_attest(att, sizeof(att), buf, (size_t)len, NOW + 5,
                                 &sn);
    cr_assert_gt(alen, 0);
    cr_expect_eq(ovl_record_verify(&r, att, (size_t)alen, &pol, NOW + 5, &why),
                 0, "%s", ovl_rerr_name(why));

    /* Uncertified: refused under the policy, fine without one. */
    len = presence(buf, &alice, 5, NOW, 3600, NULL);
    cr_expect_eq(ovl_record_verify(&r, buf, (size_t)len, &pol, NOW, &why),
                 -EBADMSG);
    cr_expect_eq(why, OVL_RERR_CERT_MISSING);
    alen = ovl_record_attest(att, sizeof(att), buf, (size_t)len, NOW + 5, &sn);
    cr_expect_eq(ovl_record_verify(&r, att, (size_t)alen, &pol, NOW + 5, &why),
                 -EBADMSG);
    cr_expect_eq(why, OVL_RERR_CERT_MISSING);

    static const struct {
        const char *what;
        const struct ovl_identity *auth;
        uint8_t kind;
        const char *name;
        const struct ovl_identity *subject;
        uint64_t nb, na;
        enum ovl_rerr want;
    } cases[] = {
        {"other name", &authority, OVL_CERT_HANDLE, "alicf", &alice, NOW - 10,
         NOW + 100, OVL_RERR_CERT_MISMATCH},
        {"other subject", &authority, OVL_CERT_HANDLE, "alice", &mallory,
         NOW - 10, NOW + 100, OVL_RERR_CERT_MISMATCH},
        {"room cert for a handle", &authority, OVL_CERT_ROOM, "alice", &alice,
         NOW - 10, NOW + 100, OVL_RERR_CERT_MISMATCH},
        {"other authority", &other_auth, OVL_CERT_HANDLE, "alice", &alice,
         NOW - 10, NOW + 100, OVL_RERR_CERT_INVALID},
        {"self-signed", &alice, OVL_CERT_HANDLE, "alice", &alice, NOW - 10,
         NOW + 100, OVL_RERR_CERT_INVALID},
        {"expired", &authority, OVL_CERT_HANDLE, "alice", &alice, NOW - 100,
         NOW - 1, OVL_RERR_CERT_EXPIRED},
        {"not yet valid", &authority, OVL_CERT_HANDLE, "alice", &alice,
         NOW + OVL_CLOCK_SKEW + 10, NOW + 100000, OVL_RERR_CERT_EXPIRED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(cert_for(cert, cases[i].auth, cases[i].kind,
                              cases[i].name, cases[i].subject, cases[i].nb,
                              cases[i].na),
                     0);
        len = presence(buf, &alice, 5, NOW, 3600, cert);
        cr_expect_eq(ovl_record_verify(&r, buf, (size_t)len, &pol, NOW, &why),
                     -EBADMSG, "case %zu (%s)", i, cases[i].what);
        cr_expect_eq(why, cases[i].want, "case %zu (%s): %s", i,
                     cases[i].what, ovl_rerr_name(why));
    }

    /* Tampered certificate bytes. */
    cert_for(cert, &authority, OVL_CERT_HANDLE, "alice", &alice, NOW - 10,
             NOW + 100);
    for (size_t off = 0; off < OVL_CERT_LEN; off += 7) {
        uint8_t t[OVL_CERT_LEN];
        memcpy(t, cert, sizeof(t));
        t[off] ^= 0x10;
        cr_expect_eq(ovl_cert_verify(&c, t, sizeof(t), authority.ed_pk, NOW,
                                     &why),
                     -EBADMSG, "offset %zu", off);
    }
    cr_expect_eq(ovl_cert_verify(&c, cert, OVL_CERT_LEN - 1, NULL, NOW, &why),
                 -EBADMSG);
    /* Sign refusals. */
    struct ovl_cert bad = {0};
    bad.kind = 9;
    bad.name_len = 1;
    bad.name[0] = 'x';
    bad.not_after = 1;
    cr_expect_eq(ovl_cert_sign(cert, &authority, &bad), -EINVAL);
}

Test(record, build_refusals)
{
    uint8_t buf[OVL_RECORD_MAX];
    struct ovl_record_params p = {0};

    p.type = OVL_R_LASTSEEN;
    p.name = "bob";
    p.name_len = 3;
    p.seq = 1;
    p.issued = NOW;
    p.expires = NOW + 10;
    cr_expect_gt(ovl_record_build(buf, sizeof(buf), &p, &alice), 0);
    cr_expect_eq(ovl_record_build(buf, 50, &p, &alice), -ENOBUFS);
    p.seq = 0;
    cr_expect_eq(ovl_record_build(buf, sizeof(buf), &p, &alice), -EINVAL);
    p.seq = 1;
    p.expires = NOW;
    cr_expect_eq(ovl_record_build(buf, sizeof(buf), &p, &alice), -EINVAL);
    p.expires = NOW + 1;
    p.name = "b b";
    cr_expect_eq(ovl_record_build(buf, sizeof(buf), &p, &alice), -EINVAL);
    p.name = "bob";
    p.type = 9;
    cr_expect_eq(ovl_record_build(buf, sizeof(buf), &p, &alice), -EINVAL);
    p.type = OVL_R_PRESENCE; /* no supernode */
    cr_expect_eq(ovl_record_build(buf, sizeof(buf), &p, &alice), -EINVAL);
    p.type = OVL_R_ROOM; /* no address */
    cr_expect_eq(ovl_record_build(buf, sizeof(buf), &p, &alice), -EINVAL);
}
