/*
 * ovl_net_util.c: see ovl_net_util.h.
 */
#include "ovl_net_util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void grow(struct net *n, uint32_t hosts)
{
    uint32_t cap = n->cap;

    if (hosts <= cap)
        return;
    while (cap < hosts)
        cap = cap ? cap * 2 : 64;
    n->log = realloc(n->log, cap * sizeof(*n->log));
    n->lk = realloc(n->lk, (size_t)cap * LK_PER_HOST * sizeof(*n->lk));
    n->lk_tok = realloc(n->lk_tok, (size_t)cap * LK_PER_HOST * sizeof(uint32_t));
    cr_assert(n->log && n->lk && n->lk_tok);
    memset(n->log + n->cap, 0, (cap - n->cap) * sizeof(*n->log));
    memset(n->lk + (size_t)n->cap * LK_PER_HOST, 0,
           (size_t)(cap - n->cap) * LK_PER_HOST * sizeof(*n->lk));
    memset(n->lk_tok + (size_t)n->cap * LK_PER_HOST, 0,
           (size_t)(cap - n->cap) * LK_PER_HOST * sizeof(uint32_t));
    n->cap = cap;
}

static void on_event(struct ovl_sim *s, uint32_t h, const struct ovl_event *ev,
                     void *data)
{
    struct net *n = data;
    struct host_log *l;

    (void)s;
    grow(n, h + 1);
    l = &n->log[h];
    switch (ev->kind) {
    case OVL_NEV_LOGGED_IN:
        l->logged_in++;
        break;
    case OVL_NEV_LOGIN_FAILED:
        l->login_failed++;
        memcpy(l->last_reason, ev->reason, sizeof(l->last_reason));
        break;
    case OVL_NEV_SUPERNODE_LOST:
        l->lost++;
        break;
    case OVL_NEV_ROLE_CHANGED:
        l->role_changed++;
        l->role = ev->role;
        break;
    case OVL_NEV_LOGGED_OUT:
        l->logged_out++;
        break;
    case OVL_NEV_PUBLISHED:
        if (ev->status == 0)
            l->published++;
        else
            l->publish_failed++;
        break;
    case OVL_NEV_BUDDY:
        l->buddy_events++;
        l->last_buddy = *ev;
        break;
    case OVL_NEV_LOOKUP:
        l->lookups++;
        l->lookups_busy += ev->status == -EAGAIN;
        l->lookups_online += ev->state == OVL_PS_ONLINE;
        for (int i = 0; i < LK_PER_HOST; i++) {
            size_t k = (size_t)h * LK_PER_HOST + i;

            if (n->lk_tok[k] == ev->token && !n->lk[k].done) {
                n->lk[k].done = true;
                n->lk[k].ev = *ev;
            }
        }
        break;
    }
}

uint32_t net_add(struct net *n, enum ovl_role_mode mode, enum ovl_nat nat,
                 const char *handle, const uint8_t *cert)
{
    struct ovl_sim_node_config c = {0};
    uint32_t h;

    c.mode = mode;
    c.nat = nat;
    c.handle = handle;
    c.cert = cert;
    c.tcp443 = mode == OVL_ROLE_MODE_SUPERNODE;
    cr_assert_eq(ovl_sim_add(n->sim, &c, &h), 0);
    grow(n, h + 1);
    cr_assert_eq(ovl_sim_start(n->sim, h), 0);
    return h;
}

struct net *net_new(const struct net_params *p, uint32_t settle_s)
{
    struct ovl_sim_config cfg = {0};
    struct net *n = calloc(1, sizeof(*n));
    struct ovl_contact boot[8];
    char name[32];

    cr_assert_not_null(n);
    cfg.seed[0] = p->seed;
    cfg.plaintext = p->plaintext;
    cfg.loss = p->loss;
    if (p->timing)
        cfg.timing = *p->timing;
    cr_assert_eq(ovl_sim_new(&n->sim, &cfg), 0);
    ovl_sim_on_event(n->sim, on_event, n);
    n->nsn = p->nsn;
    n->npeer = p->npeer;
    grow(n, p->nsn + p->npeer);
    for (uint32_t i = 0; i < p->nsn; i++) {
        struct ovl_sim_node_config c = {0};
        uint32_t h;

        c.mode = OVL_ROLE_MODE_SUPERNODE;
        c.nat = OVL_NAT_OPEN;
        c.tcp443 = i % 2 == 0;
        c.authority = p->authority;
        cr_assert_eq(ovl_sim_add(n->sim, &c, &h), 0);
        if (i < 8)
            ovl_sim_contact(n->sim, h, &boot[i]);
        ovl_sim_set_bootstrap(n->sim, boot, i < 8 ? i : 8);
        cr_assert_eq(ovl_sim_start(n->sim, h), 0);
        ovl_sim_run_until(n->sim, ovl_sim_now(n->sim) + NSEC / 20);
    }
    ovl_sim_run_until(n->sim, ovl_sim_now(n->sim) + 3 * NSEC);
    for (uint32_t i = 0; i < p->npeer; i++) {
        struct ovl_sim_node_config c = {0};
        uint32_t h;

        snprintf(name, sizeof(name), "user%u", i);
        c.mode = OVL_ROLE_MODE_PEER;
        c.nat = p->nat_mix ? (enum ovl_nat)(i % 5) : OVL_NAT_CONE;
        c.handle = name;
        c.authority = p->authority;
        cr_assert_eq(ovl_sim_add(n->sim, &c, &h), 0);
        cr_assert_eq(ovl_sim_start(n->sim, h), 0);
    }
    net_run(n, settle_s);
    return n;
}

void net_free(struct net *n)
{
    ovl_sim_free(n->sim);
    free(n->log);
    free(n->lk);
    free(n->lk_tok);
    free(n);
}

void net_run(struct net *n, uint32_t seconds)
{
    ovl_sim_run_until(n->sim, ovl_sim_now(n->sim) + seconds * NSEC);
}

uint32_t net_peer(const struct net *n, uint32_t i)
{
    return n->nsn + i;
}

int net_lookup(struct net *n, uint32_t host, uint8_t rtype, const char *name)
{
    struct ovl_node *node = ovl_sim_node(n->sim, host);
    uint32_t tok;

    if (node == NULL)
        return -1;
    for (int i = 0; i < LK_PER_HOST; i++) {
        size_t k = (size_t)host * LK_PER_HOST + i;

        if (n->lk_tok[k] && !n->lk[k].done)
            continue;
        if (ovl_node_lookup(node, rtype, name, ovl_sim_now(n->sim), &tok) != 0)
            return -1;
        n->lk_tok[k] = tok;
        memset(&n->lk[k], 0, sizeof(n->lk[k]));
        ovl_sim_touch(n->sim, host);
        return i;
    }
    return -1;
}

const struct lk_result *net_wait(struct net *n, uint32_t host, int slot,
                                 uint32_t max_s)
{
    size_t k = (size_t)host * LK_PER_HOST + (size_t)slot;

    for (uint32_t i = 0; i < max_s * 10 && !n->lk[k].done; i++)
        ovl_sim_run_until(n->sim, ovl_sim_now(n->sim) + NSEC / 10);
    return &n->lk[k];
}

uint32_t net_logged_in(const struct net *n, uint32_t from, uint32_t to)
{
    uint32_t k = 0;

    for (uint32_t h = from; h < to; h++) {
        struct ovl_node *node = ovl_sim_node(n->sim, h);

        k += node && ovl_node_logged_in(node);
    }
    return k;
}

uint64_t net_sum_rec_drops(const struct net *n, int reason)
{
    uint64_t k = 0;

    for (uint32_t h = 0; h < ovl_sim_hosts(n->sim); h++) {
        struct ovl_node *node = ovl_sim_node(n->sim, h);

        if (node)
            k += ovl_node_stats(node)->rec_drops[reason];
    }
    return k;
}
