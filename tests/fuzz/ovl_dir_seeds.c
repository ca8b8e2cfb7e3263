/*
 * ovl_dir_seeds.c: writes the seed corpora of the overlay directory fuzz
 * targets (fuzz_ovl_msg, fuzz_ovl_record, fuzz_ovl_hostcache,
 * fuzz_ovl_node). Seeds are valid inputs for the fixed world of
 * fuzz_ovl_dir_common.h, which is why they are generated rather than
 * captured. Run after changing a layout or that world:
 *
 *   ./build/tests/ovl_dir_seeds tests/fuzz/corpus
 *
 * and commit the result. The output is deterministic (fixed keys, fixed
 * times, deterministic signatures). Other files in those corpus
 * directories are inputs a fuzzer found (regressions); they are kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_ovl_dir_common.h"
#include "fuzz_ovl_node_common.h"
#include "ovl_node.h"
#include "ovl_test_util.h"

static const char *base;

static void die(const char *what)
{
    fprintf(stderr, "ovl_dir_seeds: %s\n", what);
    exit(1);
}

/* Writes @prefix (may be empty) then @data as corpus/<corpus>/<name>. */
static void put(const char *corpus, const char *name, const uint8_t *prefix,
                size_t plen, const uint8_t *data, size_t len)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", base, corpus);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", base, corpus, name);
    fp = fopen(path, "wb");
    if (!fp || (plen && fwrite(prefix, 1, plen, fp) != plen) ||
        (len && fwrite(data, 1, len, fp) != len) || fclose(fp) != 0)
        die(path);
}

/* ---- ovl_msg ------------------------------------------------------------------ */


static void msg(const char *name, struct ovl_msg *m)
{
    uint8_t buf[OVL_MSG_MAX];
    int len = ovl_msg_encode(m, buf, sizeof(buf));

    if (len < 0)
        die(name);
    put("ovl_msg", name, NULL, 0, buf, (size_t)len);
}

static void msg_seeds(void)
{
    const struct fzd *w = fzd_world();
    static uint8_t rec[FZD_REC__COUNT][OVL_RECORD_MAX];
    size_t rlen[FZD_REC__COUNT];
    struct ovl_msg m;

    for (int k = 0; k < FZD_REC__COUNT; k++)
        rlen[k] = fzd_record(rec[k], (enum fzd_rec)k, 1000 + (uint64_t)k);

    memset(&m, 0, sizeof(m));
    m.rid = 0x01020304u;
    m.type = OVL_M_PING;
    m.flags = OVL_MF_DHT_MEMBER;
    msg("ping", &m);
    m.flags = 0;
    m.type = OVL_M_PONG;
    ovl_addr_v4(&m.u.pong.observed, 0xC0A80001u, 33033);
    msg("pong", &m);
    memset(&m.u, 0, sizeof(m.u));
    msg("pong_no_addr", &m);
    m.type = OVL_M_ERROR;
    m.u.error.code = OVL_MERR_BUSY;
    msg("error_busy", &m);

    memset(&m, 0, sizeof(m));
    m.rid = 7;
    m.type = OVL_M_LOGIN;
    m.flags = OVL_MF_LOGIN_HAS_CERT;
    strcpy(m.u.login.handle, "alice");
    m.u.login.handle_len = 5;
    m.u.login.cert = w->cert_handle;
    msg("login_cert", &m);
    m.flags = OVL_MF_LOGIN_FALLBACK;
    m.u.login.cert = NULL;
    m.u.login.handle_len = 0;
    m.u.login.handle[0] = '\0';
    msg("login_anonymous_fallback", &m);
    memset(&m.u, 0, sizeof(m.u));
    m.flags = 0;
    m.type = OVL_M_LOGIN_OK;
    ovl_addr_v4(&m.u.login_ok.observed, 0x01020304u, 9);
    m.u.login_ok.keepalive_s = 30;
    msg("login_ok", &m);
    memset(&m.u, 0, sizeof(m.u));
    m.type = OVL_M_LOGIN_ERR;
    m.u.login_err.code = OVL_MERR_FULL;
    m.u.login_err.count = 2;
    contact(&m.u.login_err.contacts[0], 1, false);
    contact(&m.u.login_err.contacts[1], 2, true);
    msg("login_err_full", &m);

    memset(&m.u, 0, sizeof(m.u));
    m.type = OVL_M_HOSTCACHE_GET;
    m.u.hostcache_get.max = OVL_CONTACTS_MAX;
    msg("hostcache_get", &m);
    memset(&m.u, 0, sizeof(m.u));
    m.type = OVL_M_HOSTCACHE;
    m.u.contacts.count = OVL_CONTACTS_MAX;
    for (int j = 0; j < OVL_CONTACTS_MAX; j++)
        contact(&m.u.contacts.contacts[j], (uint8_t)(j + 3), j % 3 == 0);
    msg("hostcache_full", &m);
    m.type = OVL_M_NODES;
    m.u.contacts.count = 3;
    msg("nodes", &m);
    memset(&m.u, 0, sizeof(m.u));
    m.type = OVL_M_FIND_NODE;
    m.flags = OVL_MF_DHT_MEMBER;
    memset(m.u.find_node.target, 0xAB, 32);
    msg("find_node", &m);

    memset(&m.u, 0, sizeof(m.u));
    m.type = OVL_M_STORE;
    m.flags = OVL_MF_SEARCH;
    m.u.store.record = rec[FZD_PRESENCE_CERT];
    m.u.store.record_len = (uint16_t)rlen[FZD_PRESENCE_CERT];
    msg("store_search_presence_cert", &m);
    m.flags = OVL_MF_DHT_MEMBER;
    m.u.store.record = rec[FZD_ATTESTED];
    m.u.store.record_len = (uint16_t)rlen[FZD_ATTESTED];
    msg("store_attested", &m);
    memset(&m.u, 0, sizeof(m.u));
    m.flags = 0;
    m.type = OVL_M_STORE_OK;
    m.u.store_ok.status = OVL_STORE_OLDER;
    m.u.store_ok.replicas = 7;
    m.u.store_ok.seq = 0x1122334455667788ull;
    msg("store_ok_older", &m);

    memset(&m.u, 0, sizeof(m.u));
    m.type = OVL_M_FIND_VALUE;
    m.flags = OVL_MF_SEARCH;
    memset(m.u.find_value.key, 0x5A, 32);
    m.u.find_value.known_seq = 42;
    msg("find_value_search", &m);
    memset(&m.u, 0, sizeof(m.u));
    m.flags = 0;
    m.type = OVL_M_VALUE;
    m.u.value.status = OVL_VALUE_FOUND;
    m.u.value.rounds = 3;
    m.u.value.messages = 40;
    m.u.value.record = rec[FZD_ROOM_CERT];
    m.u.value.record_len = (uint16_t)rlen[FZD_ROOM_CERT];
    msg("value_found_room", &m);
    memset(&m.u, 0, sizeof(m.u));
    m.u.value.status = OVL_VALUE_NOT_FOUND;
    m.u.value.count = 3;
    for (int j = 0; j < 3; j++)
        contact(&m.u.value.contacts[j], (uint8_t)(j + 60), j == 1);
    msg("value_not_found_contacts", &m);

    memset(&m.u, 0, sizeof(m.u));
    m.type = OVL_M_SUBSCRIBE;
    m.flags = OVL_MF_SEARCH;
    memset(m.u.subscribe.key, 0x77, 32);
    m.u.subscribe.ttl_s = 600;
    msg("subscribe_search", &m);
    m.flags = OVL_MF_UNSUBSCRIBE | OVL_MF_DHT_MEMBER;
    m.u.subscribe.ttl_s = 0;
    msg("unsubscribe", &m);
    memset(&m.u, 0, sizeof(m.u));
    m.flags = 0;
    m.rid = 0;
    m.type = OVL_M_NOTIFY;
    memset(m.u.notify.key, 0x77, 32);
    m.u.notify.record = rec[FZD_LASTSEEN];
    m.u.notify.record_len = (uint16_t)rlen[FZD_LASTSEEN];
    msg("notify_lastseen", &m);
    m.u.notify.record = NULL;
    m.u.notify.record_len = 0;
    m.rid = 9;
    msg("notify_none", &m);

    memset(&m.u, 0, sizeof(m.u));
    m.type = OVL_M_REACH_PROBE;
    m.flags = OVL_MF_REACH_RELAY | OVL_MF_DHT_MEMBER;
    contact(&m.u.reach.target, 90, false);
    msg("reach_probe_relay", &m);
    m.flags = 0;
    m.type = OVL_M_REACH_OK;
    m.u.reach.result = OVL_REACH_UDP | OVL_REACH_TCP;
    msg("reach_ok", &m);
}

/* ---- ovl_record ------------------------------------------------------------------ */

static void record_seeds(void)
{
    static const struct {
        const char *name;
        enum fzd_rec kind;
        uint8_t mode;
        enum ovl_rerr expect; /* what fuzz_ovl_record's verify says */
    } seeds[] = {
        {"presence", FZD_PRESENCE, 0x00, OVL_RERR_NONE},
        {"presence_resign", FZD_PRESENCE, 0x08, OVL_RERR_NONE},
        {"presence_expired", FZD_PRESENCE, 0x20, OVL_RERR_EXPIRED},
        {"presence_cert_authority", FZD_PRESENCE_CERT, 0x01, OVL_RERR_NONE},
        {"presence_cert_resign_all", FZD_PRESENCE_CERT, 0x0B, OVL_RERR_NONE},
        {"presence_no_cert_authority", FZD_PRESENCE, 0x01,
         OVL_RERR_CERT_MISSING},
        {"lastseen", FZD_LASTSEEN, 0x10, OVL_RERR_NONE},
        {"lastseen_late", FZD_LASTSEEN, 0x30, OVL_RERR_EXPIRED},
        {"attested", FZD_ATTESTED, 0x10, OVL_RERR_NONE},
        {"attested_resign_all", FZD_ATTESTED, 0x1C, OVL_RERR_NONE},
        {"room", FZD_ROOM, 0x00, OVL_RERR_NONE},
        {"room_late", FZD_ROOM, 0x20, OVL_RERR_EXPIRED},
        {"room_cert_authority", FZD_ROOM_CERT, 0x01, OVL_RERR_NONE},
        {"room_cert_resign_all", FZD_ROOM_CERT, 0x0B, OVL_RERR_NONE},
        {"room_withdrawn", FZD_ROOM_WITHDRAWN, 0x08, OVL_RERR_NONE},
    };
    static const uint64_t offsets[4] = {10, 3610, 7 * 3600, 73 * 3600};
    const struct fzd *w = fzd_world();
    uint8_t rec[OVL_RECORD_MAX];

    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        size_t len = fzd_record(rec, seeds[i].kind, 5000 + i);
        struct ovl_record_policy pol = {
            (seeds[i].mode & 1) ? w->t.ed_pk : NULL};
        struct ovl_record r;
        enum ovl_rerr why;

        /* A seed that does not reach the checks it is meant for is a bug
         * here, not in the library. */
        ovl_record_verify(&r, rec, len, &pol,
                          FZD_ISSUED + offsets[(seeds[i].mode >> 4) & 3],
                          &why);
        if (why != seeds[i].expect)
            die(seeds[i].name);
        put("ovl_record", seeds[i].name, &seeds[i].mode, 1, rec, len);
    }
}

/* ---- ovl_hostcache --------------------------------------------------------------- */

static void hostcache_seed(const char *name, int n)
{
    static struct ovl_hostcache hc;
    static uint8_t buf[sizeof(struct ovl_hcw_head) +
                       OVL_HOSTCACHE_MAX * sizeof(struct ovl_hcw_entry)];
    struct ovl_contact c;
    int len;

    ovl_hc_init(&hc);
    for (int i = 0; i < n; i++) {
        contact(&c, (uint8_t)i, i % 4 == 1);
        /* Distinct keys beyond 256 entries are not needed: at most 200. */
        ovl_hc_add(&hc, &c, 1704067200u + (uint32_t)i);
        if (i % 5 == 2)
            ovl_hc_failed(&hc, c.node_id);
    }
    len = ovl_hc_save(&hc, buf, sizeof(buf));
    if (len < 0)
        die(name);
    put("ovl_hostcache", name, NULL, 0, buf, (size_t)len);
}

static void hostcache_seeds(void)
{
    hostcache_seed("empty", 0);
    hostcache_seed("one", 1);
    hostcache_seed("seventeen", 17);
    hostcache_seed("full", OVL_HOSTCACHE_MAX);
}

/* ---- ovl_node -------------------------------------------------------------------- */

/* Appends one fuzz_ovl_node step carrying @m. */
static size_t step(uint8_t *out, size_t at, uint8_t ctl, struct ovl_msg *m)
{
    int len = ovl_msg_encode(m, out + at + 3, OVL_MSG_MAX);

    if (len < 0)
        die("node step");
    out[at] = ctl;
    out[at + 1] = (uint8_t)len;
    out[at + 2] = (uint8_t)(len >> 8);
    return at + 3 + (size_t)len;
}

static size_t step_raw(uint8_t *out, size_t at, uint8_t ctl,
                       const uint8_t *raw, size_t len)
{
    out[at] = ctl;
    out[at + 1] = (uint8_t)len;
    out[at + 2] = (uint8_t)(len >> 8);
    memcpy(out + at + 3, raw, len);
    return at + 3 + len;
}

static void node_seeds(void)
{
    static uint8_t s[16384], rec[OVL_RECORD_MAX];
    uint8_t key[32];
    struct ovl_msg m;
    size_t at, len;

    /* Peer A logs in over UDP, then searches, publishes, subscribes. */
    memset(&m, 0, sizeof(m));
    m.rid = 100;
    m.type = OVL_M_LOGIN;
    strcpy(m.u.login.handle, "alice");
    m.u.login.handle_len = 5;
    at = step(s, 0, FZN_FROM_A, &m);
    memset(&m.u, 0, sizeof(m.u));
    m.rid = 101;
    m.type = OVL_M_FIND_VALUE;
    m.flags = OVL_MF_SEARCH;
    ovl_record_key(key, OVL_R_PRESENCE, "bob", 3);
    memcpy(m.u.find_value.key, key, 32);
    at = step(s, at, FZN_FROM_A, &m);
    len = fzd_record(rec, FZD_PRESENCE, 7000);
    memset(&m.u, 0, sizeof(m.u));
    m.rid = 102;
    m.type = OVL_M_STORE;
    m.u.store.record = rec;
    m.u.store.record_len = (uint16_t)len;
    at = step(s, at, FZN_FROM_A | FZN_ADVANCE(1), &m);
    memset(&m.u, 0, sizeof(m.u));
    m.rid = 103;
    m.flags = OVL_MF_SEARCH;
    m.type = OVL_M_SUBSCRIBE;
    memcpy(m.u.subscribe.key, key, 32);
    m.u.subscribe.ttl_s = 600;
    at = step(s, at, FZN_FROM_A | FZN_ADVANCE(2), &m);
    memset(&m.u, 0, sizeof(m.u));
    m.flags = 0;
    m.rid = 104;
    m.type = OVL_M_HOSTCACHE_GET;
    m.u.hostcache_get.max = 8;
    at = step(s, at, FZN_FROM_A | FZN_ADVANCE(5), &m);
    put("ovl_node", "peer_session", NULL, 0, s, at);

    /* The same over TCP, and a flood of searches. */
    for (size_t i = 0; i < at;) {
        size_t l = (size_t)s[i + 1] | (size_t)s[i + 2] << 8;
        s[i] |= FZN_TCP;
        i += 3 + l;
    }
    put("ovl_node", "peer_session_tcp", NULL, 0, s, at);
    memset(&m, 0, sizeof(m));
    m.rid = 200;
    m.type = OVL_M_LOGIN;
    at = step(s, 0, FZN_FROM_B, &m);
    for (uint32_t i = 0; i < 60; i++) {
        memset(&m.u, 0, sizeof(m.u));
        m.rid = 201 + i;
        m.type = OVL_M_FIND_VALUE;
        m.flags = OVL_MF_SEARCH;
        memset(m.u.find_value.key, (int)i, 32);
        at = step(s, at, FZN_FROM_B, &m);
    }
    put("ovl_node", "search_flood", NULL, 0, s, at);

    /* A supernode (DHT member) talking DHT, and a stranger's requests. */
    memset(&m, 0, sizeof(m));
    m.rid = 300;
    m.type = OVL_M_FIND_NODE;
    m.flags = OVL_MF_DHT_MEMBER;
    memset(m.u.find_node.target, 0x42, 32);
    at = step(s, 0, FZN_FROM_S, &m);
    len = fzd_record(rec, FZD_ROOM, 8000);
    memset(&m.u, 0, sizeof(m.u));
    m.rid = 301;
    m.type = OVL_M_STORE;
    m.u.store.record = rec;
    m.u.store.record_len = (uint16_t)len;
    at = step(s, at, FZN_FROM_S, &m);
    len = fzd_record(rec, FZD_ROOM_WITHDRAWN, 8001);
    m.rid = 302;
    m.u.store.record_len = (uint16_t)len;
    at = step(s, at, FZN_FROM_S | FZN_ADVANCE(3), &m);
    memset(&m.u, 0, sizeof(m.u));
    m.rid = 303;
    m.type = OVL_M_FIND_VALUE;
    ovl_record_key(m.u.find_value.key, OVL_R_ROOM, "standup", 7);
    at = step(s, at, FZN_FROM_S, &m);
    m.flags = 0;
    m.rid = 304;
    at = step(s, at, FZN_FROM_X, &m);
    memset(&m.u, 0, sizeof(m.u));
    m.rid = 305;
    m.type = OVL_M_REACH_PROBE;
    m.flags = OVL_MF_REACH_RELAY | OVL_MF_DHT_MEMBER;
    contact(&m.u.reach.target, 90, false);
    at = step(s, at, FZN_FROM_S | FZN_ADVANCE(4), &m);
    put("ovl_node", "dht_member_and_stranger", NULL, 0, s, at);

    /* Bytes that are not a frame, then a silent TCP connection. */
    at = step_raw(s, 0, FZN_FROM_X | FZN_TCP | FZN_RAW,
                  (const uint8_t *)"\x00\x05hello", 7);
    at = step_raw(s, at, FZN_FROM_B | FZN_TCP | FZN_RAW | FZN_ADVANCE(6),
                  (const uint8_t *)"\x00", 1);
    at = step_raw(s, at, FZN_FROM_B | FZN_ADVANCE(7), NULL, 0);
    put("ovl_node", "raw_and_silent_tcp", NULL, 0, s, at);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    base = argv[1];
    msg_seeds();
    record_seeds();
    hostcache_seeds();
    node_seeds();
    return 0;
}
