/*
 * fuzz_ovl_dir_common.h: the fixed world of the overlay directory fuzz
 * targets (fuzz_ovl_msg, fuzz_ovl_record, fuzz_ovl_hostcache,
 * fuzz_ovl_node), shared with their seed generator (ovl_dir_seeds.c) so
 * that the seeds are valid for exactly this world.
 *
 * Everything comes from fixed seeds: three identities (A owns records, S
 * is a supernode, T the login authority), a wall clock, and helpers that
 * build well-signed records of every kind. Ed25519 signatures are
 * deterministic, so the same call always gives the same bytes.
 */
#ifndef FUZZ_OVL_DIR_COMMON_H
#define FUZZ_OVL_DIR_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ovl_msg.h"
#include "ovl_record.h"

#define FZD_CHECK(cond)                                                       \
    do {                                                                      \
        if (!(cond))                                                          \
            abort();                                                          \
    } while (0)

/* Records are issued at FZD_ISSUED (Unix seconds); targets verify them at
 * FZD_ISSUED plus an offset the input picks. */
#define FZD_ISSUED 1704067200ull

struct fzd {
    struct ovl_identity a, s, t; /* owner, supernode, authority */
    struct ovl_contact s_contact;
    uint8_t cert_handle[OVL_CERT_LEN]; /* T certifies A for "alice" */
    uint8_t cert_room[OVL_CERT_LEN];   /* T certifies A for room "standup" */
};

static inline void fzd_identity(struct ovl_identity *id, uint8_t seed)
{
    uint8_t s[32];

    memset(s, seed, sizeof(s));
    FZD_CHECK(ovl_identity_from_seed(id, s) == 0);
}

static inline void fzd_cert(uint8_t out[OVL_CERT_LEN], const struct fzd *w,
                            uint8_t kind, const char *name)
{
    struct ovl_cert c;

    memset(&c, 0, sizeof(c));
    c.kind = kind;
    c.name_len = (uint8_t)strlen(name);
    memcpy(c.name, name, c.name_len);
    memcpy(c.subject, w->a.ed_pk, 32);
    c.not_before = FZD_ISSUED - 3600;
    c.not_after = FZD_ISSUED + 30 * 86400;
    FZD_CHECK(ovl_cert_sign(out, &w->t, &c) == 0);
}

/* The world, built once per process. */
static inline const struct fzd *fzd_world(void)
{
    static struct fzd w;
    static int ready;

    if (ready)
        return &w;
    FZD_CHECK(sodium_init() >= 0);
    fzd_identity(&w.a, 0xA1);
    fzd_identity(&w.s, 0x5A);
    fzd_identity(&w.t, 0x7A);
    memset(&w.s_contact, 0, sizeof(w.s_contact));
    memcpy(w.s_contact.identity, w.s.ed_pk, 32);
    ovl_node_id(w.s_contact.node_id, w.s.ed_pk);
    ovl_addr_v4(&w.s_contact.udp, 0x0B000001u, 4000);
    w.s_contact.tcp_port = 4000;
    w.s_contact.flags = OVL_CF_TCP443;
    fzd_cert(w.cert_handle, &w, OVL_CERT_HANDLE, "alice");
    fzd_cert(w.cert_room, &w, OVL_CERT_ROOM, "standup");
    ready = 1;
    return &w;
}

/* Kinds of record the seeds use. */
enum fzd_rec {
    FZD_PRESENCE = 0,     /* "alice" online at S, two addresses */
    FZD_PRESENCE_CERT,    /* ... with T's certificate */
    FZD_LASTSEEN,         /* "alice" offline, owner-signed */
    FZD_ATTESTED,         /* "alice" offline, attested by S */
    FZD_ROOM,             /* room "standup" at one IPv6 address */
    FZD_ROOM_CERT,        /* ... with T's certificate, two addresses */
    FZD_ROOM_WITHDRAWN,   /* "standup" withdrawn (unspecified address) */
    FZD_REC__COUNT
};

/* Builds record @kind with sequence @seq into @out (OVL_RECORD_MAX).
 * Returns its length. */
static inline size_t fzd_record(uint8_t *out, enum fzd_rec kind, uint64_t seq)
{
    const struct fzd *w = fzd_world();
    struct ovl_record_params p;
    struct ovl_addr addrs[2];
    uint8_t presence[OVL_RECORD_MAX];
    int len;

    memset(&p, 0, sizeof(p));
    ovl_addr_v4(&addrs[0], 0xC0000201u, 33033);
    memset(&addrs[1], 0, sizeof(addrs[1]));
    addrs[1].family = OVL_AF_INET6;
    addrs[1].ip[0] = 0x20;
    addrs[1].ip[1] = 0x01;
    addrs[1].ip[15] = 0x07;
    addrs[1].port = 443;
    p.seq = seq;
    p.issued = FZD_ISSUED;
    p.addrs = addrs;
    switch (kind) {
    case FZD_PRESENCE:
    case FZD_PRESENCE_CERT:
    case FZD_ATTESTED:
        p.type = OVL_R_PRESENCE;
        p.name = "alice";
        p.expires = FZD_ISSUED + OVL_PRESENCE_TTL;
        p.supernode = &w->s_contact;
        p.naddr = 2;
        p.cert = kind == FZD_PRESENCE_CERT ? w->cert_handle : NULL;
        break;
    case FZD_LASTSEEN:
        p.type = OVL_R_LASTSEEN;
        p.name = "alice";
        p.expires = FZD_ISSUED + OVL_LASTSEEN_KEEP;
        p.last_seen = FZD_ISSUED;
        break;
    case FZD_ROOM:
    case FZD_ROOM_CERT:
    case FZD_ROOM_WITHDRAWN:
        p.type = OVL_R_ROOM;
        p.name = "standup";
        p.expires = FZD_ISSUED + OVL_ROOM_TTL;
        p.addrs = kind == FZD_ROOM ? &addrs[1] : addrs;
        p.naddr = kind == FZD_ROOM_CERT ? 2 : 1;
        p.tcp_port = kind == FZD_ROOM_WITHDRAWN ? 0 : 33033;
        p.cert = kind == FZD_ROOM_CERT ? w->cert_room : NULL;
        if (kind == FZD_ROOM_WITHDRAWN) {
            memset(&addrs[0], 0, sizeof(addrs[0]));
            addrs[0].family = OVL_AF_INET;
            addrs[0].port = 9;
        }
        break;
    default:
        FZD_CHECK(0);
    }
    p.name_len = strlen(p.name);
    len = ovl_record_build(kind == FZD_ATTESTED ? presence : out,
                           OVL_RECORD_MAX, &p, &w->a);
    FZD_CHECK(len > 0);
    if (kind == FZD_ATTESTED) {
        len = ovl_record_attest(out, OVL_RECORD_MAX, presence, (size_t)len,
                                FZD_ISSUED + 600, &w->s);
        FZD_CHECK(len > 0);
    }
    return (size_t)len;
}

#endif /* FUZZ_OVL_DIR_COMMON_H */
