/*
 * ovl_dht.c: routing table, record store, lookup and results cache
 * (ovl_dht.h).
 */
#include "ovl_dht.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* ---- Ids ---------------------------------------------------------------------- */

int ovl_id_cmp_dist(const uint8_t target[32], const uint8_t a[32],
                    const uint8_t b[32])
{
    for (int i = 0; i < 32; i++) {
        uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];

        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

int ovl_id_bucket(const uint8_t a[32], const uint8_t b[32])
{
    for (int i = 0; i < 32; i++) {
        uint8_t d = a[i] ^ b[i];

        if (d)
            return (31 - i) * 8 + (31 - __builtin_clz((unsigned)d));
    }
    return -1;
}

/* ---- Routing table ---------------------------------------------------------------- */

void ovl_rt_init(struct ovl_rt *rt, const uint8_t self[32])
{
    memset(rt, 0, sizeof(*rt));
    memcpy(rt->self, self, 32);
}

void ovl_rt_close(struct ovl_rt *rt)
{
    for (int i = 0; i < OVL_ID_BITS; i++)
        free(rt->b[i]);
    memset(rt, 0, sizeof(*rt));
}

static int find_in(const struct ovl_rt_entry *e, int n, const uint8_t id[32])
{
    for (int i = 0; i < n; i++)
        if (memcmp(e[i].c.node_id, id, 32) == 0)
            return i;
    return -1;
}

/* Removes e[i] of an array of *n, keeping the order. */
static void remove_at(struct ovl_rt_entry *e, uint8_t *n, int i)
{
    memmove(&e[i], &e[i + 1], (size_t)(*n - i - 1) * sizeof(*e));
    (*n)--;
}

enum ovl_rt_result ovl_rt_seen(struct ovl_rt *rt, const struct ovl_contact *c,
                               uint64_t now, struct ovl_contact *ping)
{
    int bi = ovl_id_bucket(rt->self, c->node_id), i;
    struct ovl_rt_bucket *b;
    struct ovl_rt_entry ent;

    if (bi < 0)
        return OVL_RT_SELF;
    if (rt->b[bi] == NULL && (rt->b[bi] = calloc(1, sizeof(*b))) == NULL)
        return OVL_RT_NOMEM;
    b = rt->b[bi];
    memset(&ent, 0, sizeof(ent));
    ent.c = *c;
    ent.last_seen = now;
    i = find_in(b->e, b->n, c->node_id);
    if (i >= 0) {
        /* Known: to the tail (most recently seen), failures forgiven. */
        remove_at(b->e, &b->n, i);
        b->e[b->n++] = ent;
        return OVL_RT_UPDATED;
    }
    if (b->n < OVL_DHT_K) {
        i = find_in(b->rep, b->nrep, c->node_id);
        if (i >= 0)
            remove_at(b->rep, &b->nrep, i);
        b->e[b->n++] = ent;
        rt->count++;
        return OVL_RT_ADDED;
    }
    /* Full: remember it as a replacement (freshest last, oldest dropped)
     * and have the caller check the least recently seen entry. */
    i = find_in(b->rep, b->nrep, c->node_id);
    if (i >= 0)
        remove_at(b->rep, &b->nrep, i);
    else if (b->nrep == OVL_RT_REPLACEMENTS)
        remove_at(b->rep, &b->nrep, 0);
    b->rep[b->nrep++] = ent;
    if (ping)
        *ping = b->e[0].c;
    return OVL_RT_PENDING;
}

bool ovl_rt_failed(struct ovl_rt *rt, const uint8_t id[32])
{
    int bi = ovl_id_bucket(rt->self, id), i;
    struct ovl_rt_bucket *b;

    if (bi < 0 || (b = rt->b[bi]) == NULL ||
        (i = find_in(b->e, b->n, id)) < 0)
        return false;
    if (b->e[i].fails < UINT8_MAX)
        b->e[i].fails++;
    if ((b->e[i].fails >= OVL_RT_FAILS_EVICT && b->nrep > 0) ||
        b->e[i].fails >= OVL_RT_FAILS_DROP) {
        remove_at(b->e, &b->n, i);
        rt->count--;
        if (b->nrep > 0) {
            /* The freshest replacement goes in as least recently seen
             * would be wrong: it was heard from recently, so at the tail. */
            b->e[b->n++] = b->rep[b->nrep - 1];
            b->nrep--;
            rt->count++;
        }
        return true;
    }
    return false;
}

void ovl_rt_remove(struct ovl_rt *rt, const uint8_t id[32])
{
    int bi = ovl_id_bucket(rt->self, id), i;
    struct ovl_rt_bucket *b;

    if (bi < 0 || (b = rt->b[bi]) == NULL)
        return;
    if ((i = find_in(b->e, b->n, id)) >= 0) {
        remove_at(b->e, &b->n, i);
        rt->count--;
        if (b->nrep > 0) {
            b->e[b->n++] = b->rep[b->nrep - 1];
            b->nrep--;
            rt->count++;
        }
    } else if ((i = find_in(b->rep, b->nrep, id)) >= 0) {
        remove_at(b->rep, &b->nrep, i);
    }
}

const struct ovl_rt_entry *ovl_rt_find(const struct ovl_rt *rt,
                                       const uint8_t id[32])
{
    int bi = ovl_id_bucket(rt->self, id), i;

    if (bi < 0 || rt->b[bi] == NULL ||
        (i = find_in(rt->b[bi]->e, rt->b[bi]->n, id)) < 0)
        return NULL;
    return &rt->b[bi]->e[i];
}

/* Inserts @c into the sorted @out of *n (capacity @cap) if near enough. */
static void insert_sorted(struct ovl_contact *out, size_t *n, size_t cap,
                          const uint8_t target[32],
                          const struct ovl_contact *c)
{
    size_t i = *n;

    if (*n == cap) {
        if (ovl_id_cmp_dist(target, c->node_id, out[cap - 1].node_id) >= 0)
            return;
        i = cap - 1;
    } else {
        (*n)++;
    }
    while (i > 0 && ovl_id_cmp_dist(target, c->node_id,
                                    out[i - 1].node_id) < 0) {
        out[i] = out[i - 1];
        i--;
    }
    out[i] = *c;
}

size_t ovl_rt_closest(const struct ovl_rt *rt, const uint8_t target[32],
                      struct ovl_contact *out, size_t n, uint8_t skip_failed)
{
    size_t have = 0;

    if (n == 0)
        return 0;
    /* At most a few hundred entries: a full scan with a bounded insertion
     * sort is simpler than walking buckets outward and as fast. */
    for (int bi = 0; bi < OVL_ID_BITS; bi++) {
        const struct ovl_rt_bucket *b = rt->b[bi];

        if (b == NULL)
            continue;
        for (int i = 0; i < b->n; i++)
            if (skip_failed == 0 || b->e[i].fails < skip_failed)
                insert_sorted(out, &have, n, target, &b->e[i].c);
    }
    return have;
}

void ovl_rt_touch(struct ovl_rt *rt, const uint8_t target[32], uint64_t now)
{
    int bi = ovl_id_bucket(rt->self, target);

    if (bi >= 0 && rt->b[bi])
        rt->b[bi]->touched = now;
}

int ovl_rt_stale_bucket(const struct ovl_rt *rt, uint64_t before)
{
    for (int bi = 0; bi < OVL_ID_BITS; bi++)
        if (rt->b[bi] && rt->b[bi]->n && rt->b[bi]->touched < before)
            return bi;
    return -1;
}

void ovl_rt_random_id(const struct ovl_rt *rt, int i, const uint8_t rnd[32],
                      uint8_t out[32])
{
    /* Distance d = rnd with bit i set and everything above cleared. */
    uint8_t d[32];
    int byte = 31 - i / 8, bit = i % 8;

    memcpy(d, rnd, 32);
    memset(d, 0, (size_t)byte);
    d[byte] &= (uint8_t)((1u << bit) - 1);
    d[byte] |= (uint8_t)(1u << bit);
    for (int j = 0; j < 32; j++)
        out[j] = rt->self[j] ^ d[j];
}

/* ---- Record store --------------------------------------------------------------------- */

static uint32_t key_hash(const uint8_t key[32])
{
    /* Keys are hash outputs already. */
    return (uint32_t)key[0] | (uint32_t)key[1] << 8 | (uint32_t)key[2] << 16 |
           (uint32_t)key[3] << 24;
}

int ovl_store_init(struct ovl_store *st, uint32_t max_records)
{
    memset(st, 0, sizeof(*st));
    st->max = max_records ? max_records : 65536;
    st->mask = 63;
    st->tab = calloc(st->mask + 1, sizeof(*st->tab));
    return st->tab ? 0 : -ENOMEM;
}

void ovl_store_close(struct ovl_store *st)
{
    if (st->tab == NULL)
        return;
    for (uint32_t i = 0; i <= st->mask; i++) {
        struct ovl_store_entry *e = st->tab[i], *next;

        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(st->tab);
    memset(st, 0, sizeof(*st));
}

static struct ovl_store_entry **slot_of(struct ovl_store *st,
                                        const uint8_t key[32])
{
    struct ovl_store_entry **p = &st->tab[key_hash(key) & st->mask];

    while (*p && memcmp((*p)->key, key, 32) != 0)
        p = &(*p)->next;
    return p;
}

static void grow(struct ovl_store *st)
{
    uint32_t nmask = st->mask * 2 + 1;
    struct ovl_store_entry **nt = calloc(nmask + 1, sizeof(*nt));

    if (nt == NULL)
        return; /* keep the longer chains */
    for (uint32_t i = 0; i <= st->mask; i++) {
        struct ovl_store_entry *e = st->tab[i], *next;

        for (; e; e = next) {
            next = e->next;
            e->next = nt[key_hash(e->key) & nmask];
            nt[key_hash(e->key) & nmask] = e;
        }
    }
    free(st->tab);
    st->tab = nt;
    st->mask = nmask;
}

static void unlink_entry(struct ovl_store *st, struct ovl_store_entry **p)
{
    struct ovl_store_entry *e = *p;

    *p = e->next;
    st->count--;
    st->bytes -= e->len;
    free(e);
}

enum ovl_store_put ovl_store_put(struct ovl_store *st,
                                 const struct ovl_record *r, bool pin_owner,
                                 uint64_t now, uint64_t now_s,
                                 uint64_t republish_at,
                                 const struct ovl_store_entry **out)
{
    struct ovl_store_entry **p = slot_of(st, r->key), *e = *p, *ne;

    if (out)
        *out = NULL;
    if (e && e->expires <= now_s) {
        unlink_entry(st, p);
        e = NULL;
    }
    if (e) {
        struct ovl_record old;

        if (out)
            *out = e;
        if (ovl_record_parse(&old, e->rec, e->len) != 0)
            return OVL_PUT_OLDER; /* cannot happen: stored verified */
        if (e->len == r->raw_len && memcmp(e->rec, r->raw, e->len) == 0) {
            e->stored_at = now;
            e->republish_at = republish_at;
            return OVL_PUT_DUPLICATE;
        }
        if (!ovl_record_newer(r, &old))
            return OVL_PUT_OLDER;
        if (pin_owner && memcmp(old.owner, r->owner, 32) != 0)
            return OVL_PUT_OWNER;
    } else if (st->count >= st->max) {
        return OVL_PUT_FULL;
    }
    ne = malloc(sizeof(*ne) + r->raw_len);
    if (ne == NULL)
        return OVL_PUT_FULL;
    memcpy(ne->key, r->key, 32);
    ne->seq = r->seq;
    ne->type = r->type;
    ne->expires = r->expires;
    memcpy(ne->owner, r->owner, 32);
    ne->stored_at = now;
    ne->republish_at = republish_at;
    ne->len = (uint16_t)r->raw_len;
    memcpy(ne->rec, r->raw, r->raw_len);
    if (e) {
        ne->next = e->next;
        st->bytes -= e->len;
        free(e);
        *p = ne;
    } else {
        ne->next = st->tab[key_hash(r->key) & st->mask];
        st->tab[key_hash(r->key) & st->mask] = ne;
        st->count++;
        if (st->count > (st->mask + 1) * 2)
            grow(st);
    }
    st->bytes += ne->len;
    if (out)
        *out = ne;
    return OVL_PUT_STORED;
}

const struct ovl_store_entry *ovl_store_get(struct ovl_store *st,
                                            const uint8_t key[32],
                                            uint64_t now_s)
{
    struct ovl_store_entry **p = slot_of(st, key);

    if (*p == NULL)
        return NULL;
    if ((*p)->expires <= now_s) {
        unlink_entry(st, p);
        return NULL;
    }
    return *p;
}

uint32_t ovl_store_expire(struct ovl_store *st, uint64_t now_s)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i <= st->mask; i++) {
        struct ovl_store_entry **p = &st->tab[i];

        while (*p) {
            if ((*p)->expires <= now_s) {
                unlink_entry(st, p);
                n++;
            } else {
                p = &(*p)->next;
            }
        }
    }
    return n;
}

void ovl_store_each_due(struct ovl_store *st, uint64_t now,
                        void (*fn)(struct ovl_store_entry *e, void *data),
                        void *data)
{
    for (uint32_t i = 0; i <= st->mask; i++)
        for (struct ovl_store_entry *e = st->tab[i]; e; e = e->next)
            if (e->republish_at <= now)
                fn(e, data);
}

/* ---- Lookup --------------------------------------------------------------------------- */

void ovl_lookup_init(struct ovl_lookup *l, enum ovl_lookup_kind kind,
                     const uint8_t target[32], const uint8_t self[32])
{
    /* The candidate array is most of the struct: clear only the header. */
    memset(l, 0, offsetof(struct ovl_lookup, cand));
    memcpy(l->target, target, 32);
    memcpy(l->self, self, 32);
    l->kind = (uint8_t)kind;
    l->k = OVL_DHT_K;
    l->fanout0 = OVL_LOOKUP_FANOUT0;
    l->fanout_max = OVL_LOOKUP_FANOUT_MAX;
}

static int cand_find(const struct ovl_lookup *l, const uint8_t id[32])
{
    for (int i = 0; i < l->ncand; i++)
        if (memcmp(l->cand[i].c.node_id, id, 32) == 0)
            return i;
    return -1;
}

void ovl_lookup_add(struct ovl_lookup *l, const struct ovl_contact *c)
{
    int i;

    if (l->done || memcmp(c->node_id, l->self, 32) == 0 ||
        cand_find(l, c->node_id) >= 0)
        return;
    if (l->ncand == OVL_LOOKUP_CANDS) {
        /* Full: the farthest candidate not asked makes room, if the new
         * one is nearer. Asked ones stay (their answers are awaited). */
        for (i = l->ncand - 1; i >= 0; i--)
            if (l->cand[i].state == OVL_CAND_NEW)
                break;
        if (i < 0 || ovl_id_cmp_dist(l->target, c->node_id,
                                     l->cand[i].c.node_id) >= 0)
            return;
        memmove(&l->cand[i], &l->cand[i + 1],
                (size_t)(l->ncand - i - 1) * sizeof(l->cand[0]));
        l->ncand--;
        if (l->found && i < l->holder)
            l->holder--;
    }
    i = l->ncand;
    while (i > 0 &&
           ovl_id_cmp_dist(l->target, c->node_id, l->cand[i - 1].c.node_id) <
               0) {
        l->cand[i] = l->cand[i - 1];
        i--;
    }
    memset(&l->cand[i], 0, sizeof(l->cand[i]));
    l->cand[i].c = *c;
    l->ncand++;
    if (l->found && i <= l->holder)
        l->holder++; /* the holder moved one place down */
}

/* True when the k nearest candidates that did not fail have answered. */
static bool k_closest_answered(const struct ovl_lookup *l)
{
    int seen = 0;

    for (int i = 0; i < l->ncand && seen < l->k; i++) {
        if (l->cand[i].state == OVL_CAND_FAILED)
            continue;
        if (l->cand[i].state != OVL_CAND_ANSWERED)
            return false;
        seen++;
    }
    return seen > 0;
}

/* A found record is final when no candidate closer than its holder is
 * left unasked. */
static bool closer_unasked(const struct ovl_lookup *l)
{
    for (int i = 0; i < l->holder && i < l->ncand; i++)
        if (l->cand[i].state == OVL_CAND_NEW)
            return true;
    return false;
}

size_t ovl_lookup_next(struct ovl_lookup *l, uint64_t now,
                       struct ovl_contact *out, size_t max)
{
    size_t want, n = 0;

    (void)now;
    if (l->done || l->inflight > 0)
        return 0;
    if ((l->found && !closer_unasked(l)) || (!l->found && k_closest_answered(l)) ||
        l->rounds >= OVL_LOOKUP_ROUNDS_MAX) {
        l->done = true;
        return 0;
    }
    want = (size_t)l->fanout0 << (l->rounds < 8 ? l->rounds : 8);
    if (want > l->fanout_max)
        want = l->fanout_max;
    if (want > max)
        want = max;
    for (int i = 0; i < l->ncand && n < want; i++) {
        if (l->cand[i].state != OVL_CAND_NEW)
            continue;
        if (l->found && i >= l->holder)
            break; /* only those closer than the holder remain to ask */
        l->cand[i].state = OVL_CAND_ASKED;
        l->cand[i].round = l->rounds;
        out[n++] = l->cand[i].c;
    }
    if (n == 0) { /* exhausted */
        l->done = true;
        return 0;
    }
    l->rounds++;
    l->messages = (uint16_t)(l->messages + n);
    l->inflight = (uint16_t)n;
    return n;
}

static void settle(struct ovl_lookup *l, const uint8_t id[32],
                   enum ovl_cand_state st)
{
    int i = cand_find(l, id);

    if (i < 0 || l->cand[i].state != OVL_CAND_ASKED)
        return;
    l->cand[i].state = (uint8_t)st;
    /* Only queries of the current round hold it open. */
    if (l->cand[i].round + 1 == l->rounds && l->inflight > 0)
        l->inflight--;
}

void ovl_lookup_answered(struct ovl_lookup *l, const uint8_t id[32])
{
    settle(l, id, OVL_CAND_ANSWERED);
}

void ovl_lookup_failed(struct ovl_lookup *l, const uint8_t id[32])
{
    settle(l, id, OVL_CAND_FAILED);
}

void ovl_lookup_value(struct ovl_lookup *l, const uint8_t id[32],
                      const struct ovl_record *r, uint64_t now)
{
    struct ovl_record best;
    int i = cand_find(l, id);

    if (i >= 0 && (!l->found || i < l->holder))
        l->holder = (uint16_t)i;
    if (!l->found || ovl_record_parse(&best, l->rec, l->rec_len) != 0 ||
        ovl_record_newer(r, &best)) {
        memcpy(l->rec, r->raw, r->raw_len);
        l->rec_len = (uint16_t)r->raw_len;
        if (!l->found)
            l->found_at = now;
        l->found = true;
    }
    settle(l, id, OVL_CAND_ANSWERED);
}

bool ovl_lookup_final(const struct ovl_lookup *l)
{
    return l->found && !closer_unasked(l);
}

bool ovl_lookup_can_finish(const struct ovl_lookup *l, uint64_t now,
                           uint64_t grace)
{
    return l->found && !closer_unasked(l) &&
           (l->inflight == 0 || now >= l->found_at + grace);
}

size_t ovl_lookup_closest(const struct ovl_lookup *l, struct ovl_contact *out,
                          size_t n)
{
    size_t have = 0;

    for (int i = 0; i < l->ncand && have < n; i++)
        if (l->cand[i].state == OVL_CAND_ANSWERED)
            out[have++] = l->cand[i].c;
    return have;
}

/* ---- Results cache ----------------------------------------------------------------------- */

int ovl_cache_init(struct ovl_cache *c, uint32_t entries, uint64_t ttl,
                   uint64_t neg_ttl)
{
    uint32_t sets = 1;

    memset(c, 0, sizeof(*c));
    while (sets * OVL_CACHE_WAYS < entries)
        sets <<= 1;
    c->e = calloc((size_t)sets * OVL_CACHE_WAYS, sizeof(*c->e));
    if (c->e == NULL)
        return -ENOMEM;
    c->set_mask = sets - 1;
    c->ttl = ttl;
    c->neg_ttl = neg_ttl;
    return 0;
}

void ovl_cache_close(struct ovl_cache *c)
{
    if (c->e) {
        for (uint32_t i = 0; i < (c->set_mask + 1) * OVL_CACHE_WAYS; i++)
            free(c->e[i].rec);
        free(c->e);
    }
    memset(c, 0, sizeof(*c));
}

static struct ovl_cache_entry *cache_set(struct ovl_cache *c,
                                         const uint8_t key[32])
{
    return &c->e[(key_hash(key) & c->set_mask) * OVL_CACHE_WAYS];
}

static struct ovl_cache_entry *cache_find(struct ovl_cache *c,
                                          const uint8_t key[32])
{
    struct ovl_cache_entry *set = cache_set(c, key);

    for (int w = 0; w < OVL_CACHE_WAYS; w++)
        if (set[w].used && memcmp(set[w].key, key, 32) == 0)
            return &set[w];
    return NULL;
}

static void cache_drop(struct ovl_cache_entry *e)
{
    free(e->rec);
    memset(e, 0, sizeof(*e));
}

void ovl_cache_put(struct ovl_cache *c, const uint8_t key[32],
                   const struct ovl_record *r, uint64_t now)
{
    struct ovl_cache_entry *e = cache_find(c, key), *set;
    uint8_t *copy = NULL;

    if (c->e == NULL)
        return;
    if (e && r && e->len && e->seq > r->seq)
        return; /* never go back to an older version */
    if (r && (copy = malloc(r->raw_len)) == NULL)
        return;
    if (e == NULL) {
        set = cache_set(c, key);
        e = &set[0];
        for (int w = 0; w < OVL_CACHE_WAYS; w++) {
            if (!set[w].used) {
                e = &set[w];
                break;
            }
            if (set[w].cached_at < e->cached_at)
                e = &set[w];
        }
    }
    cache_drop(e);
    e->used = true;
    memcpy(e->key, key, 32);
    e->cached_at = now;
    if (r) {
        memcpy(copy, r->raw, r->raw_len);
        e->rec = copy;
        e->len = (uint16_t)r->raw_len;
        e->seq = r->seq;
        e->expires = r->expires;
    }
}

const struct ovl_cache_entry *ovl_cache_get(struct ovl_cache *c,
                                            const uint8_t key[32],
                                            uint64_t now, uint64_t now_s)
{
    struct ovl_cache_entry *e;

    if (c->e == NULL || (e = cache_find(c, key)) == NULL) {
        c->misses++;
        return NULL;
    }
    if (now >= e->cached_at + (e->len ? c->ttl : c->neg_ttl) ||
        (e->len && e->expires <= now_s)) {
        cache_drop(e);
        c->misses++;
        return NULL;
    }
    c->hits++;
    return e;
}

void ovl_cache_saw_seq(struct ovl_cache *c, const uint8_t key[32],
                       uint64_t seq)
{
    struct ovl_cache_entry *e;

    if (c->e == NULL || (e = cache_find(c, key)) == NULL)
        return;
    /* A negative entry is wrong as soon as any version exists. */
    if (e->len == 0 || e->seq < seq) {
        cache_drop(e);
        c->invalidations++;
    }
}
