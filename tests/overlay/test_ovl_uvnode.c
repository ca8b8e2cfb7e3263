/*
 * test_ovl_uvnode.c: the libuv driver (overlay/uv/ovl_uvnode.h) on real
 * loopback sockets: a seed supernode and peers in one loop. Login, lookups
 * (online, unknown, offline after a graceful logout), STUN answered by the
 * supernode only, NAT discovery, the host cache file, silent TCP
 * connections closed, contact text round trip.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ovl_identity.h"
#include "ovl_stun.h"
#include "ovl_uvnode.h"

enum { MAXN = 4 };

struct tnode {
    struct ovl_uvnode *u;
    struct ovl_identity id;
    bool logged_in;
    int lookups;
    struct ovl_event last_lookup;
    bool nat_done;
    struct ovl_nat_result nat;
    bool closed;
    bool logged_out;
};

static uv_loop_t loop;
static struct tnode nodes[MAXN];
static uint32_t max_per_source; /* 0: the driver's default */

static void on_event(struct ovl_uvnode *u, const struct ovl_event *ev, void *data)
{
    struct tnode *t = data;

    (void)u;
    if (ev->kind == OVL_NEV_LOGGED_IN)
        t->logged_in = true;
    if (ev->kind == OVL_NEV_LOGGED_OUT)
        t->logged_out = true;
    if (ev->kind == OVL_NEV_LOOKUP) {
        t->lookups++;
        t->last_lookup = *ev;
    }
}

static void on_nat(struct ovl_uvnode *u, const struct ovl_nat_result *r, void *data)
{
    struct tnode *t = data;

    (void)u;
    t->nat_done = true;
    t->nat = *r;
}

static void on_closed(void *data)
{
    ((struct tnode *)data)->closed = true;
}

/* Runs the loop until *flag or @ms pass. */
static bool run_until(const bool *flag, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    uv_timer_t tick;
    bool ok;

    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, (uv_timer_cb)(void (*)(void))uv_timer_stop, 10, 10);
    while (!*flag && uv_now(&loop) < end) {
        uv_timer_again(&tick);
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    ok = *flag;
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static int lookups_at_least(struct tnode *t, int n, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;

    while (t->lookups < n && uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    return t->lookups;
}

static void start_node(int i, enum ovl_role_mode mode, const char *handle,
                       const struct ovl_contact *boot, const char *hc_path)
{
    struct ovl_uvnode_config c = {0};
    char err[256];
    int rc;

    cr_assert_eq(ovl_identity_generate(&nodes[i].id, NULL), 0);
    c.node.identity = &nodes[i].id;
    c.node.role_mode = mode;
    c.node.handle = handle;
    c.node.bootstrap = boot;
    c.node.nbootstrap = boot ? 1 : 0;
    c.bind_ip = "127.0.0.1";
    c.listen_tcp = mode != OVL_ROLE_MODE_PEER;
    c.hostcache_path = hc_path;
    c.nat_discovery = mode == OVL_ROLE_MODE_PEER;
    c.nat_rto_ms = 50;
    c.nat_rc = 3;
    c.node.timing.accept_timeout = 300 * 1000000ull;
    c.max_conns_per_ip = max_per_source;
    c.on_event = on_event;
    c.on_nat = on_nat;
    c.data = &nodes[i];
    rc = ovl_uvnode_new(&nodes[i].u, &loop, &c, err, sizeof(err));
    cr_assert_eq(rc, 0, "node %d: %s", i, err);
}

static void close_node(int i, bool graceful)
{
    ovl_uvnode_close(nodes[i].u, graceful, on_closed, &nodes[i]);
    cr_assert(run_until(&nodes[i].closed, 3000), "node %d closes", i);
    nodes[i].u = NULL;
}

static void setup(void)
{
    memset(nodes, 0, sizeof(nodes));
    max_per_source = 0;
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void teardown_all(void)
{
    for (int i = 0; i < MAXN; i++)
        if (nodes[i].u && !nodes[i].closed)
            close_node(i, false);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_expect_eq(uv_loop_close(&loop), 0, "every handle closed");
}

TestSuite(uvnode, .init = setup, .fini = teardown_all, .timeout = 60);

static void seed_contact(struct ovl_contact *c)
{
    struct ovl_uvnode_status st;

    ovl_uvnode_status(nodes[0].u, &st);
    *c = st.self;
}

Test(uvnode, login_lookup_logout)
{
    struct ovl_contact seed;
    uint32_t tok;

    start_node(0, OVL_ROLE_MODE_SUPERNODE, NULL, NULL, NULL);
    cr_assert(run_until(&nodes[0].logged_in, 3000), "seed supernode is up");
    seed_contact(&seed);
    cr_assert_neq(seed.udp.port, 0);
    start_node(1, OVL_ROLE_MODE_PEER, "alice", &seed, NULL);
    start_node(2, OVL_ROLE_MODE_PEER, "bob", &seed, NULL);
    cr_assert(run_until(&nodes[1].logged_in, 5000), "alice logs in");
    cr_assert(run_until(&nodes[2].logged_in, 5000), "bob logs in");

    {
        struct ovl_uvnode_status st;

        ovl_uvnode_status(nodes[1].u, &st);
        cr_assert(st.has_supernode);
        cr_assert(memcmp(st.supernode.identity, nodes[0].id.ed_pk, 32) == 0,
                  "alice is attached to the seed");
        ovl_uvnode_status(nodes[0].u, &st);
        cr_assert_eq(st.role, OVL_ROLE_SUPERNODE);
        cr_assert_eq(st.attached, 2);
    }

    /* alice looks up bob: online, with bob's address. */
    cr_assert_eq(ovl_node_lookup(ovl_uvnode_node(nodes[1].u), OVL_R_PRESENCE, "bob",
                                 ovl_uvnode_now(nodes[1].u), &tok), 0);
    ovl_uvnode_flush(nodes[1].u);
    cr_assert_eq(lookups_at_least(&nodes[1], 1, 5000), 1);
    cr_assert_eq(nodes[1].last_lookup.token, tok);
    cr_assert_eq(nodes[1].last_lookup.state, OVL_PS_ONLINE);
    cr_assert(memcmp(nodes[1].last_lookup.owner, nodes[2].id.ed_pk, 32) == 0);
    cr_assert_geq(nodes[1].last_lookup.naddr, 1);

    /* An unknown handle. */
    cr_assert_eq(ovl_node_lookup(ovl_uvnode_node(nodes[1].u), OVL_R_PRESENCE, "nobody",
                                 ovl_uvnode_now(nodes[1].u), &tok), 0);
    ovl_uvnode_flush(nodes[1].u);
    cr_assert_eq(lookups_at_least(&nodes[1], 2, 5000), 2);
    cr_assert_eq(nodes[1].last_lookup.state, OVL_PS_UNKNOWN);

    /* bob logs out gracefully: offline, last seen about now. Another
     * handle is asked first so the supernode's cache of "bob" is not
     * what answers (cache_ttl). */
    close_node(2, true);
    cr_assert(nodes[2].logged_out, "a graceful close reports the logout");
    {
        time_t before = time(NULL);
        uint64_t end = uv_now(&loop) + 30000;
        int want = 3;

        do {
            cr_assert_eq(ovl_node_lookup(ovl_uvnode_node(nodes[1].u), OVL_R_PRESENCE, "bob",
                                         ovl_uvnode_now(nodes[1].u), &tok), 0);
            ovl_uvnode_flush(nodes[1].u);
            cr_assert_eq(lookups_at_least(&nodes[1], want, 5000), want);
            want++;
            if (nodes[1].last_lookup.state == OVL_PS_OFFLINE)
                break;
            /* The supernode may answer from its 20 s cache first. */
            {
                bool never = false;

                run_until(&never, 1000);
            }
        } while (uv_now(&loop) < end);
        cr_assert_eq(nodes[1].last_lookup.state, OVL_PS_OFFLINE);
        cr_assert_geq((int64_t)nodes[1].last_lookup.last_seen, (int64_t)before - 60);
        cr_assert_leq((int64_t)nodes[1].last_lookup.last_seen, (int64_t)time(NULL) + 5);
    }
}

Test(uvnode, nat_discovery_and_stun)
{
    struct ovl_contact seed;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    uint8_t req[OVL_STUN_REQ_MAX], resp[1500], txid[OVL_STUN_TXID_LEN];
    struct ovl_stun_result r;
    enum ovl_stun_drop drop;
    struct timeval tv = {.tv_sec = 2};
    int fd, len;
    ssize_t n;

    start_node(0, OVL_ROLE_MODE_SUPERNODE, NULL, NULL, NULL);
    cr_assert(run_until(&nodes[0].logged_in, 3000));
    seed_contact(&seed);
    start_node(1, OVL_ROLE_MODE_PEER, "carol", &seed, NULL);
    cr_assert(run_until(&nodes[1].logged_in, 5000));
    cr_assert(run_until(&nodes[1].nat_done, 10000), "NAT discovery ends");
    /* Loopback: the reflexive address is our own, and the single-address
     * server cannot test filtering, so the answer is open or firewalled
     * (the classifier's two no-translation outcomes), never a NAT. */
    cr_assert(nodes[1].nat.type == OVL_NAT_OPEN || nodes[1].nat.type == OVL_NAT_FIREWALLED,
              "type %s", ovl_nat_type_name(nodes[1].nat.type));
    cr_assert_eq(nodes[1].nat.mapping, OVL_NAT_MAP_NONE);

    /* A plain STUN Binding to the supernode's UDP port gets our address;
     * the same to the peer's port gets nothing. */
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert_geq(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int target = 0; target < 2; target++) {
        struct ovl_uvnode_status st;
        bool got = false;

        ovl_uvnode_status(nodes[target].u, &st);
        sa.sin_port = htons(st.udp_port);
        sa.sin_addr.s_addr = htonl(0x7f000001u);
        len = ovl_stun_request_build(req, sizeof(req), NULL, 0, NULL, txid);
        cr_assert_gt(len, 0);
        cr_assert_eq(sendto(fd, req, (size_t)len, 0, (struct sockaddr *)&sa, sizeof(sa)), len);
        /* Let the loop answer, then read without blocking the loop. */
        for (int i = 0; i < 50 && !got; i++) {
            bool never = false;

            run_until(&never, 20);
            n = recv(fd, resp, sizeof(resp), MSG_DONTWAIT);
            if (n > 0 && ovl_stun_response_parse(&r, resp, (size_t)n, txid, &drop) == 0)
                got = true;
        }
        if (target == 0) {
            struct sockaddr_in me;
            socklen_t ml = sizeof(me);

            cr_assert(got, "the supernode answers STUN");
            cr_assert(r.success);
            getsockname(fd, (struct sockaddr *)&me, &ml);
            cr_assert_eq(r.mapped.port, ntohs(me.sin_port));
        } else {
            cr_assert_not(got, "a peer does not serve STUN");
        }
    }
    close(fd);
}

Test(uvnode, silent_tcp_closed_and_hostcache_kept)
{
    char dir[] = "/tmp/uvnode.XXXXXX", path[256];
    struct ovl_contact seed;
    struct ovl_uvnode_status st;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct stat sb;
    int fd;
    char b;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/hostcache.bin", dir);
    start_node(0, OVL_ROLE_MODE_SUPERNODE, NULL, NULL, NULL);
    cr_assert(run_until(&nodes[0].logged_in, 3000));
    seed_contact(&seed);

    /* A connection that never speaks is closed after the core's
     * accept_timeout, through the driver. */
    ovl_uvnode_status(nodes[0].u, &st);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = htons(st.tcp_port);
    sa.sin_addr.s_addr = htonl(0x7f000001u);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    {
        bool never = false;

        run_until(&never, 1800);
    }
    ovl_uvnode_status(nodes[0].u, &st);
    cr_assert_eq(st.stats->conns_unauth_closed, 1);
    cr_assert_eq(recv(fd, &b, 1, MSG_DONTWAIT), 0, "the silent connection saw EOF");
    close(fd);

    /* A peer's host cache is written at close (0600) and read at start. */
    start_node(1, OVL_ROLE_MODE_PEER, "dave", &seed, path);
    cr_assert(run_until(&nodes[1].logged_in, 5000));
    close_node(1, true);
    cr_assert_eq(stat(path, &sb), 0, "host cache written");
    cr_assert_eq(sb.st_mode & 0777, 0600);
    nodes[1].logged_in = false;
    nodes[1].closed = false;
    start_node(1, OVL_ROLE_MODE_PEER, "dave", NULL, path);
    cr_assert(run_until(&nodes[1].logged_in, 5000),
              "logs in from the saved host cache alone (no bootstrap)");
    unlink(path);
    rmdir(dir);
}

static void count_bad(const char *entry, void *data)
{
    (void)entry;
    (*(int *)data)++;
}

Test(uvnode, contact_text)
{
    struct ovl_identity id;
    struct ovl_contact c, d;
    char txt[OVL_UV_CONTACT_TEXT_MAX], in[200];
    char key[OVL_PK_TEXT_LEN];

    cr_assert_eq(ovl_identity_generate(&id, NULL), 0);
    ovl_pk_to_text(key, id.ed_pk);
    snprintf(in, sizeof(in), "%s@127.0.0.1:4000", key);
    cr_assert_eq(ovl_uv_contact_parse(&c, in), 0);
    cr_assert_eq(c.udp.port, 4000);
    cr_assert_eq(c.tcp_port, 4000);
    cr_assert(memcmp(c.node_id, id.node_id, 32) == 0);
    ovl_uv_contact_format(txt, sizeof(txt), &c);
    cr_assert_str_eq(txt, in);
    snprintf(in, sizeof(in), "%s@[::1]:5", key);
    cr_assert_eq(ovl_uv_contact_parse(&d, in), 0);
    cr_assert_eq(d.udp.family, OVL_AF_INET6);
    const char *bad[] = {"", "@1.2.3.4:5", "zz@1.2.3.4:5", "KEY", "x@1.2.3.4",
                         "x@1.2.3.4:0", "x@1.2.3.4:70000", "x@[::1:5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(ovl_uv_contact_parse(&d, bad[i]), -EINVAL, "%s", bad[i]);
    snprintf(in, sizeof(in), "%s@1.2.3.4:", key);
    cr_expect_eq(ovl_uv_contact_parse(&d, in), -EINVAL);

    /* Lists: blanks and empty entries ignored, bad entries reported. */
    {
        char list[400];
        struct ovl_contact *cs;
        size_t n;
        int nbad = 0;

        snprintf(list, sizeof(list), " %s@127.0.0.1:4000 ,, nonsense,\t%s@[::1]:5 ,", key, key);
        cr_assert_eq(ovl_uv_contacts_parse(list, &cs, &n, count_bad, &nbad), 0);
        cr_assert_eq(n, 2);
        cr_expect_eq(nbad, 1, "only 'nonsense' is reported");
        cr_expect_eq(cs[0].udp.port, 4000);
        cr_expect_eq(cs[1].udp.family, OVL_AF_INET6);
        free(cs);
        cr_assert_eq(ovl_uv_contacts_parse("", &cs, &n, count_bad, &nbad), 0);
        cr_expect_eq(n, 0);
        cr_expect_null(cs);
    }
}

/* Runs the loop for @ms whatever happens. */
static void run_for(uint64_t ms)
{
    bool never = false;

    run_until(&never, ms);
}

Test(uvnode, accepted_connections_capped_per_source)
{
    struct ovl_uvnode_status st;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd[5];
    char b;

    max_per_source = 3;
    start_node(0, OVL_ROLE_MODE_SUPERNODE, NULL, NULL, NULL);
    cr_assert(run_until(&nodes[0].logged_in, 3000));
    ovl_uvnode_status(nodes[0].u, &st);
    sa.sin_port = htons(st.tcp_port);
    sa.sin_addr.s_addr = htonl(0x7f000001u);
    for (int i = 0; i < 5; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_eq(connect(fd[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        run_for(50);
    }
    ovl_uvnode_status(nodes[0].u, &st);
    cr_assert_eq(st.counters.tcp_accepted, 3);
    cr_assert_eq(st.counters.tcp_refused_cap, 2);
    cr_assert_eq(st.conns, 3);
    for (int i = 3; i < 5; i++)
        cr_assert_eq(recv(fd[i], &b, 1, MSG_DONTWAIT), 0, "refused connection %d closed", i);
    cr_assert_eq(recv(fd[0], &b, 1, MSG_DONTWAIT), -1, "accepted ones stay open");
    /* A slot comes back when one closes. */
    close(fd[0]);
    run_for(100);
    fd[0] = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(fd[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
    run_for(100);
    ovl_uvnode_status(nodes[0].u, &st);
    cr_assert_eq(st.counters.tcp_accepted, 4);
    cr_assert_eq(st.counters.tcp_refused_cap, 2);
    for (int i = 0; i < 5; i++)
        close(fd[i]);
}

Test(uvnode, close_while_the_application_logs_out)
{
    struct ovl_contact seed;

    start_node(0, OVL_ROLE_MODE_SUPERNODE, NULL, NULL, NULL);
    cr_assert(run_until(&nodes[0].logged_in, 3000));
    seed_contact(&seed);
    start_node(1, OVL_ROLE_MODE_PEER, "erin", &seed, NULL);
    cr_assert(run_until(&nodes[1].logged_in, 5000));
    /* The application logs out and closes at once (a client's "logout"
     * then EOF): the close waits for the logout to finish. */
    cr_assert_eq(ovl_node_logout(ovl_uvnode_node(nodes[1].u), ovl_uvnode_now(nodes[1].u)), 0);
    ovl_uvnode_flush(nodes[1].u);
    cr_assert_not(nodes[1].logged_out, "the last-seen record is still being stored");
    close_node(1, true);
    cr_assert(nodes[1].logged_out, "the logout finished before the node closed");
}
