/*
 * chorus-bench-overlay: the overlay at scale in the simulator
 * (overlay/sim/ovl_sim.h), in one process.
 *
 *   1. supernodes join one by one (10 ms apart), each bootstrapping from
 *      8 random earlier ones;
 *   2. peers (handles user<i>) start over a minute, with a NAT mix (open
 *      20 %, cone 45 %, symmetric 20 %, UDP blocked 10 %, TCP 443 only
 *      5 %), each seeded with 8 random supernodes; login time = first
 *      OVL_NEV_LOGGED_IN after start;
 *   3. churn: a fraction of the supernodes crash, the same fraction of the
 *      peers leave (half log out, half crash) and as many new peers join,
 *      spread over a minute; then the network settles;
 *   4. lookups from random logged-in peers: live handles (must be found
 *      online with the right owner), departed ones (offline) and unknown
 *      ones; rounds and DHT queries come from the searching supernode's
 *      answer.
 *
 * Secure sessions cost two Noise handshakes' worth of X25519 per new
 * contact; at 60,000 nodes that dominates the run, so the default is the
 * simulation-only plaintext transport (ovl_node_config.insecure_plaintext:
 * no session crypto; records are still signed and verified). --crypto runs
 * the real sessions; run both at a smaller scale to compare. The output
 * says which.
 *
 * Usage: chorus-bench-overlay [--sn N] [--peers N] [--churn F] [--lookups N]
 *        [--loss P] [--seed N] [--crypto] [--json]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdbool.h>

#include "ovl_sim.h"

#define SEC 1000000000ull
#define MS 1000000ull

enum { QMAX = 4 };

enum hstate { H_UNUSED = 0, H_SN, H_PEER, H_CRASHED, H_LEFT };

struct hinfo {
    uint8_t state;
    uint32_t user;          /* handle index (peers) */
    uint8_t nat;
    bool published;         /* its presence record was stored */
    uint64_t started, logged_in;
    char reason[128];       /* last login failure */
    uint32_t nq;
    struct {
        uint32_t token;
        uint32_t target;    /* user index */
        uint8_t kind;       /* 0 live, 1 departed, 2 unknown */
    } q[QMAX];
};

struct result {
    uint32_t n, ok, online, offline, unknown, failed, wrong_owner;
};

static struct {
    struct ovl_sim *sim;
    struct hinfo *h;
    uint32_t nh;
    uint32_t *user_host;    /* user index -> host */
    uint32_t nusers;
    struct result res[3];
    uint32_t *rounds, *msgs, nrm;        /* DHT searches (rounds > 0) */
    uint32_t cache_answers;
    uint64_t *login_ms;
    uint32_t nlogin, lost_events;
} B;

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

static void on_event(struct ovl_sim *s, uint32_t host,
                     const struct ovl_event *ev, void *data)
{
    struct hinfo *x = &B.h[host];

    (void)data;
    switch (ev->kind) {
    case OVL_NEV_LOGGED_IN:
        if (x->state == H_PEER && x->logged_in == 0) {
            x->logged_in = ovl_sim_now(s);
            B.login_ms[B.nlogin++] = (x->logged_in - x->started) / MS;
        }
        break;
    case OVL_NEV_SUPERNODE_LOST:
        B.lost_events++;
        break;
    case OVL_NEV_PUBLISHED:
        if (ev->rtype == OVL_R_PRESENCE && ev->status == 0)
            x->published = true;
        break;
    case OVL_NEV_LOGIN_FAILED:
        memcpy(x->reason, ev->reason, sizeof(x->reason));
        break;
    case OVL_NEV_LOOKUP:
        for (uint32_t i = 0; i < x->nq; i++) {
            struct result *r;
            const struct ovl_identity *want;

            if (x->q[i].token != ev->token)
                continue;
            r = &B.res[x->q[i].kind];
            r->n++;
            switch (ev->state) {
            case OVL_PS_ONLINE:
                r->online++;
                break;
            case OVL_PS_OFFLINE:
                r->offline++;
                break;
            case OVL_PS_UNKNOWN:
                r->unknown++;
                break;
            default:
                r->failed++;
                break;
            }
            if (ev->state == OVL_PS_ONLINE || ev->state == OVL_PS_OFFLINE) {
                want = ovl_sim_identity(s, B.user_host[x->q[i].target]);
                if (memcmp(want->ed_pk, ev->owner, 32) != 0)
                    r->wrong_owner++;
            }
            if ((x->q[i].kind == 0 && ev->state == OVL_PS_ONLINE &&
                 r->wrong_owner == 0) ||
                (x->q[i].kind == 1 && ev->state == OVL_PS_OFFLINE) ||
                (x->q[i].kind == 2 && ev->state == OVL_PS_UNKNOWN))
                r->ok++;
            if (ev->rounds) {
                B.rounds[B.nrm] = ev->rounds;
                B.msgs[B.nrm++] = ev->messages;
            } else if (ev->state != OVL_PS_FAILED) {
                B.cache_answers++;
            }
            x->q[i] = x->q[--x->nq];
            break;
        }
        break;
    default:
        break;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static uint32_t pct32(uint32_t *v, uint32_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u32);
    return v[(uint32_t)(p * (n - 1))];
}

static uint64_t pct64(uint64_t *v, uint32_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    return v[(uint32_t)(p * (n - 1))];
}

static void run(double seconds)
{
    ovl_sim_run_until(B.sim, ovl_sim_now(B.sim) + (uint64_t)(seconds * SEC));
}

static void boot_from(uint32_t nsn)
{
    struct ovl_contact c[8];
    uint32_t k = nsn < 8 ? nsn : 8;

    for (uint32_t i = 0; i < k; i++) {
        uint32_t h;

        do {
            h = ovl_sim_random(B.sim, nsn);
        } while (B.h[h].state != H_SN);
        ovl_sim_contact(B.sim, h, &c[i]);
    }
    ovl_sim_set_bootstrap(B.sim, c, k);
}

static enum ovl_nat nat_mix(void)
{
    uint32_t r = ovl_sim_random(B.sim, 100);

    if (r < 20)
        return OVL_NAT_OPEN;
    if (r < 65)
        return OVL_NAT_CONE;
    if (r < 85)
        return OVL_NAT_SYMMETRIC;
    if (r < 95)
        return OVL_NAT_UDP_BLOCKED;
    return OVL_NAT_TCP443_ONLY;
}

static uint32_t add_peer(uint32_t nsn)
{
    struct ovl_sim_node_config c = {0};
    char name[32];
    uint32_t host, user = B.nusers++;

    snprintf(name, sizeof(name), "user%u", user);
    c.mode = OVL_ROLE_MODE_PEER;
    c.nat = nat_mix();
    c.handle = name;
    B.h[ovl_sim_hosts(B.sim)].nat = (uint8_t)c.nat;
    if (ovl_sim_add(B.sim, &c, &host) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    B.h[host].state = H_PEER;
    B.h[host].user = user;
    B.h[host].started = ovl_sim_now(B.sim);
    B.user_host[user] = host;
    B.nh = ovl_sim_hosts(B.sim);
    boot_from(nsn);
    ovl_sim_start(B.sim, host);
    return host;
}

/* A random live, logged-in peer host. */
static uint32_t random_peer(uint32_t nsn)
{
    for (;;) {
        uint32_t h = nsn + ovl_sim_random(B.sim, B.nh - nsn);
        struct ovl_node *n = ovl_sim_node(B.sim, h);

        if (B.h[h].state == H_PEER && n && ovl_node_logged_in(n) &&
            B.h[h].nq < QMAX)
            return h;
    }
}

static void ask(uint32_t from, uint32_t target, uint8_t kind)
{
    char name[40];
    uint32_t tok;

    if (kind == 2)
        snprintf(name, sizeof(name), "nobody%u", target);
    else
        snprintf(name, sizeof(name), "user%u", target);
    if (ovl_node_lookup(ovl_sim_node(B.sim, from), OVL_R_PRESENCE, name,
                        ovl_sim_now(B.sim), &tok) != 0)
        return;
    B.h[from].q[B.h[from].nq].token = tok;
    B.h[from].q[B.h[from].nq].target = target;
    B.h[from].q[B.h[from].nq].kind = kind;
    B.h[from].nq++;
    ovl_sim_touch(B.sim, from);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sn", required_argument, NULL, 's'},
        {"peers", required_argument, NULL, 'p'},
        {"churn", required_argument, NULL, 'c'},
        {"lookups", required_argument, NULL, 'l'},
        {"loss", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 'r'},
        {"crypto", no_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint32_t nsn = 10000, npeer = 50000, nlookups = 20000, seed = 1;
    double churn = 0.2, loss = 0.01, t0 = now_s(), t_build, t_churn, t_look;
    bool crypto = false, json = false;
    struct ovl_sim_config cfg = {0};
    uint32_t cap, gone_users = 0, *gone;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            nsn = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            npeer = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            churn = strtod(optarg, NULL);
            break;
        case 'l':
            nlookups = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'o':
            loss = strtod(optarg, NULL);
            break;
        case 'r':
            seed = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            crypto = true;
            break;
        case 'j':
            json = true;
            break;
        default:
            printf("usage: chorus-bench-overlay [--sn N] [--peers N] "
                   "[--churn F] [--lookups N] [--loss P] [--seed N] "
                   "[--crypto] [--json]\n");
            return c == 'h' ? 0 : 1;
        }
    }
    if (nsn < 16 || npeer < 16 || churn < 0 || churn > 0.9) {
        fprintf(stderr, "need --sn >= 16, --peers >= 16, 0 <= --churn <= 0.9\n");
        return 1;
    }

    memcpy(cfg.seed, &seed, sizeof(seed));
    cfg.plaintext = !crypto;
    cfg.loss = loss;
    if (ovl_sim_new(&B.sim, &cfg) != 0)
        return 2;
    ovl_sim_on_event(B.sim, on_event, NULL);
    cap = nsn + npeer + (uint32_t)(npeer * churn) + 16;
    B.h = calloc(cap, sizeof(*B.h));
    B.user_host = calloc(cap, sizeof(*B.user_host));
    B.login_ms = calloc(cap, sizeof(*B.login_ms));
    B.rounds = calloc(nlookups * 2 + 16, sizeof(*B.rounds));
    B.msgs = calloc(nlookups * 2 + 16, sizeof(*B.msgs));
    gone = calloc(cap, sizeof(*gone));
    if (!B.h || !B.user_host || !B.login_ms || !B.rounds || !B.msgs || !gone)
        return 2;

    /* 1. Supernodes. */
    for (uint32_t i = 0; i < nsn; i++) {
        struct ovl_sim_node_config sc = {0};
        uint32_t host;

        sc.mode = OVL_ROLE_MODE_SUPERNODE;
        sc.nat = OVL_NAT_OPEN;
        sc.tcp443 = ovl_sim_random(B.sim, 2) == 0;
        ovl_sim_add(B.sim, &sc, &host);
        boot_from(i);
        B.h[host].state = H_SN;
        ovl_sim_start(B.sim, host);
        run(0.01);
    }
    B.nh = nsn;
    run(10);
    if (!json)
        fprintf(stderr, "supernodes up (%.0f s wall)\n", now_s() - t0);

    /* 2. Peers over a minute. */
    for (uint32_t i = 0; i < npeer; i++) {
        add_peer(nsn);
        if (i % 100 == 99)
            run(60.0 * 100 / npeer);
    }
    run(60);
    t_build = now_s() - t0;
    uint32_t logged = 0;
    for (uint32_t h = nsn; h < B.nh; h++)
        logged += ovl_node_logged_in(ovl_sim_node(B.sim, h));
    uint32_t nlogin_first = B.nlogin;
    uint64_t login_p50 = pct64(B.login_ms, B.nlogin, 0.5);
    uint64_t login_p99 = pct64(B.login_ms, B.nlogin, 0.99);
    if (!json)
        fprintf(stderr, "peers up: %u/%u logged in (%.0f s wall)\n", logged,
                npeer, now_s() - t0);

    /* Memory while everything is up. */
    size_t mem_sn = 0, mem_peer = 0, rss = rss_bytes();
    for (uint32_t h = 0; h < B.nh; h++) {
        struct ovl_node *n = ovl_sim_node(B.sim, h);

        if (n && h < nsn)
            mem_sn += ovl_node_memory(n);
        else if (n)
            mem_peer += ovl_node_memory(n);
    }
    size_t sim_mem = ovl_sim_memory(B.sim);

    /* 3. Churn over a minute. */
    uint32_t n_sn_crash = (uint32_t)(nsn * churn);
    uint32_t n_peer_leave = (uint32_t)(npeer * churn);
    uint32_t steps = 60, done_sn = 0, done_peer = 0, joined = 0;
    uint64_t lost_before = B.lost_events;
    for (uint32_t s = 0; s < steps; s++) {
        uint32_t want_sn = n_sn_crash * (s + 1) / steps;
        uint32_t want_peer = n_peer_leave * (s + 1) / steps;

        while (done_sn < want_sn) {
            uint32_t h = ovl_sim_random(B.sim, nsn);

            if (B.h[h].state != H_SN)
                continue;
            B.h[h].state = H_CRASHED;
            ovl_sim_crash(B.sim, h);
            done_sn++;
        }
        while (done_peer < want_peer) {
            uint32_t h = nsn + ovl_sim_random(B.sim, npeer);

            if (B.h[h].state != H_PEER)
                continue;
            if (done_peer % 2) {
                B.h[h].state = H_CRASHED;
                ovl_sim_crash(B.sim, h);
            } else {
                B.h[h].state = H_LEFT;
                ovl_sim_logout(B.sim, h);
            }
            gone[gone_users++] = B.h[h].user;
            done_peer++;
            add_peer(nsn);
            joined++;
        }
        run(1);
    }
    run(90);
    t_churn = now_s() - t0;
    uint32_t live = 0, live_in = 0;
    for (uint32_t h = nsn; h < B.nh; h++)
        if (B.h[h].state == H_PEER) {
            live++;
            live_in += ovl_node_logged_in(ovl_sim_node(B.sim, h));
        }
    if (!json)
        fprintf(stderr, "churn done: %u/%u live peers attached (%.0f s wall)\n",
                live_in, live, now_s() - t0);
    for (uint32_t h = nsn; h < B.nh && getenv("OVL_DEBUG"); h++)
        if (B.h[h].state == H_PEER &&
            !ovl_node_logged_in(ovl_sim_node(B.sim, h)))
            fprintf(stderr, "  not attached: user%u nat %u: %s\n",
                    B.h[h].user, B.h[h].nat, B.h[h].reason);

    /* 4. Lookups, spread over 20 s of simulated time. */
    uint32_t per_step = nlookups / 200 + 1, asked = 0;
    for (uint32_t s = 0; s < 200 && asked < nlookups; s++) {
        for (uint32_t i = 0; i < per_step && asked < nlookups; i++, asked++) {
            uint32_t from = random_peer(nsn), r = ovl_sim_random(B.sim, 10);

            if (r < 8) { /* live handle */
                uint32_t target;

                /* A live record: a peer that is attached and whose
                 * presence was stored. */
                for (;;) {
                    uint32_t th;
                    struct ovl_node *tn;

                    target = ovl_sim_random(B.sim, B.nusers);
                    th = B.user_host[target];
                    tn = ovl_sim_node(B.sim, th);
                    if (B.h[th].state == H_PEER && th != from &&
                        B.h[th].published && tn && ovl_node_logged_in(tn))
                        break;
                }
                ask(from, target, 0);
            } else if (r < 9 && gone_users) {
                ask(from, gone[ovl_sim_random(B.sim, gone_users)], 1);
            } else {
                ask(from, ovl_sim_random(B.sim, 1u << 30), 2);
            }
        }
        run(0.1);
    }
    run(30);
    t_look = now_s() - t0;

    /* Report. */
    struct result *rl = &B.res[0], *rg = &B.res[1], *ru = &B.res[2];
    uint32_t nrm = B.nrm;
    uint32_t *rcopy = malloc((nrm + 1) * sizeof(*rcopy));
    uint32_t *mcopy = malloc((nrm + 1) * sizeof(*mcopy));
    if (rcopy == NULL || mcopy == NULL)
        return 2;
    memcpy(rcopy, B.rounds, nrm * sizeof(*rcopy));
    memcpy(mcopy, B.msgs, nrm * sizeof(*mcopy));
    uint32_t r50 = pct32(rcopy, nrm, 0.5), r99 = pct32(rcopy, nrm, 0.99);
    uint32_t m50 = pct32(mcopy, nrm, 0.5), m99 = pct32(mcopy, nrm, 0.99);
    double rmean = 0, mmean = 0;
    for (uint32_t i = 0; i < nrm; i++) {
        rmean += B.rounds[i];
        mmean += B.msgs[i];
    }
    rmean = nrm ? rmean / nrm : 0;
    mmean = nrm ? mmean / nrm : 0;
    double success = rl->n ? 100.0 * rl->ok / rl->n : 0;
    const struct ovl_sim_stats *st = ovl_sim_stats(B.sim);
    uint32_t alive_nodes = nsn + npeer;

    if (json) {
        printf("{\"transport\":\"%s\",\"supernodes\":%u,\"peers\":%u,"
               "\"churn\":%.2f,\"loss\":%.3f,\"seed\":%u,"
               "\"logged_in\":%u,\"login_ms_p50\":%llu,\"login_ms_p99\":%llu,"
               "\"live_attached_after_churn\":%u,\"live_after_churn\":%u,"
               "\"lookups_live\":%u,\"success_pct\":%.3f,"
               "\"wrong_owner\":%u,\"failed\":%u,"
               "\"departed_lookups\":%u,\"departed_offline\":%u,"
               "\"unknown_lookups\":%u,\"unknown_ok\":%u,"
               "\"dht_searches\":%u,\"cache_answers\":%u,"
               "\"rounds_p50\":%u,\"rounds_p99\":%u,\"rounds_mean\":%.2f,"
               "\"queries_p50\":%u,\"queries_p99\":%u,\"queries_mean\":%.1f,"
               "\"mem_per_supernode\":%zu,\"mem_per_peer\":%zu,"
               "\"rss_per_node\":%zu,\"sim_events\":%llu,"
               "\"wall_s\":{\"build\":%.1f,\"churn\":%.1f,\"lookups\":%.1f}}\n",
               crypto ? "secure-sessions" : "plaintext-simulation", nsn, npeer,
               churn, loss, seed, logged, (unsigned long long)login_p50,
               (unsigned long long)login_p99, live_in, live, rl->n, success,
               rl->wrong_owner, rl->failed, rg->n, rg->offline, ru->n, ru->ok,
               nrm, B.cache_answers, r50, r99, rmean, m50, m99, mmean,
               mem_sn / nsn, mem_peer / npeer, rss / alive_nodes,
               (unsigned long long)st->events, t_build, t_churn - t_build,
               t_look - t_churn);
        goto out;
    }
    printf("chorus-bench-overlay: %u supernodes, %u peers, %.0f %% churn, "
           "%.1f %% UDP loss, seed %u\n",
           nsn, npeer, churn * 100, loss * 100, seed);
    printf("transport: %s\n",
           crypto ? "secure sessions (Noise IK, ChaCha20-Poly1305)"
                  : "PLAINTEXT SIMULATION (insecure_plaintext: no session "
                    "crypto; records still signed and verified)");
    printf("login: %u/%u peers logged in; time p50 %llu ms, p99 %llu ms "
           "(%u samples)\n",
           logged, npeer, (unsigned long long)login_p50,
           (unsigned long long)login_p99, nlogin_first);
    printf("churn: %u supernodes crashed, %u peers left (half logged out, "
           "half crashed), %u joined; %llu supernode-lost events; %u/%u live "
           "peers attached after\n",
           n_sn_crash, n_peer_leave, joined,
           (unsigned long long)(B.lost_events - lost_before), live_in, live);
    printf("lookups of live handles: %u, success %.3f %% (online with the "
           "right owner), %u wrong owner, %u failed\n",
           rl->n, success, rl->wrong_owner, rl->failed);
    printf("lookups of departed handles: %u, %u offline, %u online (stale), "
           "%u unknown\n",
           rg->n, rg->offline, rg->online, rg->unknown);
    printf("lookups of unknown handles: %u, %u unknown\n", ru->n, ru->ok);
    printf("DHT searches: %u (answered from a supernode's cache: %u); "
           "rounds p50 %u, p99 %u, mean %.2f; queries p50 %u, p99 %u, "
           "mean %.1f\n",
           nrm, B.cache_answers, r50, r99, rmean, m50, m99, mmean);
    printf("memory: %zu B per supernode, %zu B per peer (node state); "
           "process RSS %.1f MiB = %zu B per node incl. simulator (%zu B "
           "sim)\n",
           mem_sn / nsn, mem_peer / npeer, rss / 1048576.0,
           rss / alive_nodes, sim_mem);
    printf("simulator: %llu events, %llu datagrams (%llu lost), %llu TCP "
           "connections\n",
           (unsigned long long)st->events, (unsigned long long)st->udp_sent,
           (unsigned long long)st->udp_lost,
           (unsigned long long)st->tcp_connects);
    printf("wall time: build %.1f s, churn %.1f s, lookups %.1f s\n", t_build,
           t_churn - t_build, t_look - t_churn);
out:
    ovl_sim_free(B.sim);
    free(rcopy);
    free(mcopy);
    free(gone);
    free(B.h);
    free(B.user_host);
    free(B.login_ms);
    free(B.rounds);
    free(B.msgs);
    return 0;
}
