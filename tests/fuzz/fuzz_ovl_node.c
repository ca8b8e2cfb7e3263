/*
 * fuzz_ovl_node.c: libFuzzer target for a supernode's request handling
 * (ovl_node.h and everything behind ovl_node_udp_recv / _tcp_recv): a
 * sequence of datagrams, stream bytes and pauses from four remote nodes
 * (fuzz_ovl_node_common.h gives the format), fed to one supernode that
 * runs with plaintext frames, so that the fuzzer speaks for the senders
 * without a Noise handshake. What is fuzzed is what lies behind the
 * session layer: dispatch, logins, searches, stores, subscriptions,
 * reach probes, rate limits, TCP framing and connection timeouts.
 *
 * Checks beyond "no crash, no sanitizer report, no leak":
 *  - every datagram the node sends is a plaintext frame from its own key
 *    carrying a message that decodes; every TCP write is one frame of
 *    the same kind on a connection that exists;
 *  - the node never closes or writes to a connection it does not have;
 *  - the heap it holds stays bounded.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; otherwise
 * tests/fuzz/fuzz_replay.c replays tests/fuzz/corpus/ovl_node (made by
 * ovl_dir_seeds).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ovl_dir_common.h"
#include "fuzz_ovl_node_common.h"
#include "ovl_node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 (1000ull * OVL_NS_PER_SEC)
enum { PLAIN_HEAD = (int)sizeof(struct ovl_plainw_head), MAX_CONNS = 64 };

struct sender {
    struct ovl_identity id;
    struct ovl_addr addr;
    uint32_t conn; /* its accepted TCP connection, 0: none */
};

static struct {
    struct ovl_identity self;
    struct sender s[4];
    bool ready;
} world;

/* Connections the node may write to: accepted ones and its own dials. */
static uint32_t conns[MAX_CONNS];
static size_t nconns;

static void world_init(void)
{
    const struct fzd *w = fzd_world();

    if (world.ready)
        return;
    fzd_identity(&world.self, 0x4E);
    world.s[FZN_FROM_A].id = w->a;
    fzd_identity(&world.s[FZN_FROM_B].id, 0xB2);
    world.s[FZN_FROM_S].id = w->s;
    fzd_identity(&world.s[FZN_FROM_X].id, 0x99);
    for (uint32_t i = 0; i < 4; i++)
        ovl_addr_v4(&world.s[i].addr, 0x0B00000Au + i,
                    i == FZN_FROM_X ? 5555 : 4000);
    world.ready = true;
}

static bool conn_known(uint32_t id)
{
    for (size_t i = 0; i < nconns; i++)
        if (conns[i] == id)
            return true;
    return false;
}

static void conn_add(uint32_t id)
{
    FZD_CHECK(id != 0 && !conn_known(id));
    if (nconns < MAX_CONNS)
        conns[nconns++] = id;
}

static void conn_forget(uint32_t id)
{
    for (size_t i = 0; i < nconns; i++)
        if (conns[i] == id)
            conns[i] = conns[--nconns];
    for (int i = 0; i < 4; i++)
        if (world.s[i].conn == id)
            world.s[i].conn = 0;
}

static void check_frame(const uint8_t *p, size_t len)
{
    struct ovl_msg m;
    enum ovl_mdrop why;

    FZD_CHECK(len > (size_t)PLAIN_HEAD && p[0] == OVL_PLAIN_TYPE);
    FZD_CHECK(memcmp(p + 4, world.self.ed_pk, 32) == 0);
    FZD_CHECK(ovl_msg_decode(&m, p + PLAIN_HEAD, len - PLAIN_HEAD, &why) ==
              0);
}

/* Drains outputs and events, checking what the node sends. Dials are
 * refused at once (nothing listens in this world). */
static void drain(struct ovl_node *n, uint64_t now)
{
    uint32_t refused[16];
    size_t nref = 0;
    struct ovl_event ev;
    struct ovl_out o;

    while (ovl_node_out_next(n, &o)) {
        switch (o.kind) {
        case OVL_OUT_UDP_SEND:
            check_frame(o.data, o.len);
            break;
        case OVL_OUT_TCP_SEND:
            FZD_CHECK(conn_known(o.conn) && o.len > 2);
            FZD_CHECK(((size_t)o.data[0] << 8 | o.data[1]) == o.len - 2);
            check_frame(o.data + 2, o.len - 2);
            break;
        case OVL_OUT_TCP_CONNECT:
            conn_add(o.conn);
            if (nref < 16)
                refused[nref++] = o.conn;
            break;
        case OVL_OUT_TCP_CLOSE:
            FZD_CHECK(conn_known(o.conn));
            conn_forget(o.conn);
            break;
        default:
            FZD_CHECK(0);
        }
    }
    while (ovl_node_event_next(n, &ev))
        ;
    for (size_t i = 0; i < nref; i++) {
        if (!conn_known(refused[i]))
            continue;
        conn_forget(refused[i]);
        ovl_node_tcp_closed(n, refused[i], now);
    }
}

/* Delivers one step's payload from @s. */
static void deliver(struct ovl_node *n, struct sender *s, uint8_t ctl,
                    const uint8_t *p, size_t len, uint64_t now)
{
    static uint8_t buf[2 + PLAIN_HEAD + 65536];
    size_t off = (ctl & FZN_TCP) ? 2 : 0, blen = len;

    if (!(ctl & FZN_RAW)) {
        struct ovl_plainw_head *h = (struct ovl_plainw_head *)(buf + off);

        memset(h, 0, sizeof(*h));
        h->type = OVL_PLAIN_TYPE;
        h->version = OVL_MSG_VERSION;
        memcpy(h->sender, s->id.ed_pk, 32);
        memcpy(buf + off + PLAIN_HEAD, p, len);
        blen = PLAIN_HEAD + len;
        if (ctl & FZN_TCP) {
            buf[0] = (uint8_t)(blen >> 8);
            buf[1] = (uint8_t)blen;
            blen += 2;
        }
        p = buf;
    }
    if (!(ctl & FZN_TCP)) {
        ovl_node_udp_recv(n, &s->addr, p, blen, now);
        return;
    }
    if (s->conn == 0) {
        s->conn = ovl_node_tcp_accepted(n, &s->addr, now);
        if (s->conn == 0)
            return;
        conn_add(s->conn);
        drain(n, now); /* accepting may evict another connection */
        if (s->conn == 0)
            return;
    }
    ovl_node_tcp_recv(n, s->conn, p, blen, now);
}

static struct ovl_node *node_new(uint64_t now)
{
    const struct fzd *w = fzd_world();
    struct ovl_node_config c;
    struct ovl_node *n;

    memset(&c, 0, sizeof(c));
    c.identity = &world.self;
    c.role_mode = OVL_ROLE_MODE_SUPERNODE;
    ovl_addr_v4(&c.local, 0x0B000002u, 4000);
    c.tcp_port = 4000;
    c.wall_offset = FZD_ISSUED * OVL_NS_PER_SEC - T0;
    c.max_records = 64;
    c.max_peers = 2;
    c.bootstrap = &w->s_contact;
    c.nbootstrap = 1;
    c.insecure_plaintext = true;
    FZD_CHECK(ovl_node_new(&n, &c, now) == 0);
    FZD_CHECK(ovl_node_start(n, now) == 0);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t now = T0;
    struct ovl_node *n;
    size_t at = 0;

    world_init();
    for (int i = 0; i < 4; i++)
        world.s[i].conn = 0;
    nconns = 0;
    n = node_new(now);
    drain(n, now);
    while (size - at >= 3) {
        uint8_t ctl = data[at];
        size_t len = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;

        if (len > size - at - 3)
            break;
        now += fzn_advance[ctl >> 4];
        if (ovl_node_next_timer(n) <= now)
            ovl_node_timers(n, now);
        drain(n, now);
        deliver(n, &world.s[ctl & 3], ctl, data + at + 3, len, now);
        drain(n, now);
        FZD_CHECK(ovl_node_memory(n) < 64u * 1024 * 1024);
        at += 3 + len;
    }
    /* Long after: every timer may fire; nothing breaks. */
    now += 300 * OVL_NS_PER_SEC;
    for (int i = 0; i < 8 && ovl_node_next_timer(n) <= now; i++) {
        ovl_node_timers(n, now);
        drain(n, now);
    }
    ovl_node_free(n);
    return 0;
}
