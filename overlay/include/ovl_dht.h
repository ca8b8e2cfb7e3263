/*
 * ovl_dht.h: the supernodes' Kademlia-style directory, as pure state
 * machines (no I/O, no clock, no randomness of their own): the routing
 * table, the record store, the iterative lookup with an expanding fan-out,
 * and the results cache. ovl_node.c drives them with messages and time.
 *
 * Ids and keys are 256 bits; distance is XOR, compared as a big-endian
 * number (Maymounkov and Mazieres, "Kademlia", IPTPS 2002, section 2.1).
 *
 * Routing table (section 2.2 of the paper, with its section 4.1 idea of a
 * replacement cache): bucket i holds up to k contacts whose distance from
 * us has its highest set bit at i, least recently seen first. A contact
 * we hear from moves to the tail. A new contact for a full bucket goes to
 * the bucket's replacement cache, and the caller is told to ping the
 * least recently seen entry; an entry that fails OVL_RT_FAILS_EVICT times
 * in a row is replaced by the freshest replacement (or dropped after
 * OVL_RT_FAILS_DROP failures even without one).
 *
 * Lookup (iterative, section 2.3, with Skype's expanding fan-out): round r
 * asks the min(fanout_0 * 2^r, fanout_max) closest candidates not yet
 * asked, all in parallel; the round ends when each has answered or failed
 * (the caller's RPC timeout). Answers add closer candidates. A value
 * lookup ends when a record is found (after the rest of that round, or a
 * grace period, so the newest version among the holders wins), or when
 * the k closest candidates that did not fail have all answered without
 * one (the DHT has no record), or when nothing is left to ask. Records
 * are mutable (newer versions replace older ones) and a replica can be
 * stale, so a found record ends the lookup only once no candidate closer
 * to the key than the closest holder is still unasked (those hold the
 * freshest versions): otherwise the next round asks them (the rule of
 * BitTorrent's BEP 44 mutable-item lookups, bounded). A node lookup ends
 * on the "k closest all answered" rule and yields them.
 *
 * Thread: loop. Nothing here is shared.
 */
#ifndef OVL_DHT_H
#define OVL_DHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_msg.h"
#include "ovl_record.h"

enum {
    OVL_ID_BITS = 256,
    OVL_DHT_K = 8,              /* bucket size and replication factor */
    OVL_RT_REPLACEMENTS = 4,    /* replacement cache per bucket */
    OVL_RT_FAILS_EVICT = 2,     /* failures before a replacement takes over */
    OVL_RT_FAILS_DROP = 4,      /* failures before removal regardless */
    OVL_LOOKUP_FANOUT0 = 8,     /* first round: ask 8 */
    OVL_LOOKUP_FANOUT_MAX = 64, /* then 16, 32, 64, 64 ... */
    OVL_LOOKUP_CANDS = 128,     /* candidates a lookup tracks */
    OVL_LOOKUP_ROUNDS_MAX = 8,
};

/* ---- Ids ------------------------------------------------------------------ */

/* <0, 0, >0 as d(a, target) is smaller, equal, larger than d(b, target). */
int ovl_id_cmp_dist(const uint8_t target[32], const uint8_t a[32],
                    const uint8_t b[32]);

/* Index of the highest bit of d(a, b), 255 for the top bit; -1 if a == b.
 * Bucket i of a routing table holds ids at distance [2^i, 2^(i+1)). */
int ovl_id_bucket(const uint8_t a[32], const uint8_t b[32]);

/* ---- Routing table ------------------------------------------------------------ */

struct ovl_rt_entry {
    struct ovl_contact c;
    uint64_t last_seen; /* now of the last message from it */
    uint8_t fails;      /* consecutive RPC failures */
};

struct ovl_rt_bucket {
    uint8_t n;       /* entries in use, e[0] least recently seen */
    uint8_t nrep;    /* replacements, rep[nrep-1] freshest */
    struct ovl_rt_entry e[OVL_DHT_K];
    struct ovl_rt_entry rep[OVL_RT_REPLACEMENTS];
    uint64_t touched; /* last lookup into this bucket's range */
};

struct ovl_rt {
    uint8_t self[32];
    struct ovl_rt_bucket *b[OVL_ID_BITS]; /* allocated on first use */
    uint32_t count;                       /* entries (not replacements) */
};

enum ovl_rt_result {
    OVL_RT_SELF = 0,     /* our own id: ignored */
    OVL_RT_ADDED,
    OVL_RT_UPDATED,      /* known: moved to the tail, address refreshed */
    OVL_RT_PENDING,      /* bucket full: kept as a replacement; *ping says
                            whom to ping (the least recently seen) */
    OVL_RT_NOMEM,
};

void ovl_rt_init(struct ovl_rt *rt, const uint8_t self[32]);
void ovl_rt_close(struct ovl_rt *rt);

/* We heard from @c (a request or an answer) at @now. */
enum ovl_rt_result ovl_rt_seen(struct ovl_rt *rt, const struct ovl_contact *c,
                               uint64_t now, struct ovl_contact *ping);

/* An RPC to @id failed. Returns true if the entry was removed. */
bool ovl_rt_failed(struct ovl_rt *rt, const uint8_t id[32]);

/* Removes @id (entry or replacement). */
void ovl_rt_remove(struct ovl_rt *rt, const uint8_t id[32]);

const struct ovl_rt_entry *ovl_rt_find(const struct ovl_rt *rt,
                                       const uint8_t id[32]);

/* Up to @n contacts closest to @target, nearest first, skipping entries
 * with @skip_failed or more failures (0: none skipped). */
size_t ovl_rt_closest(const struct ovl_rt *rt, const uint8_t target[32],
                      struct ovl_contact *out, size_t n, uint8_t skip_failed);

/* Marks the bucket covering @target as looked up at @now. */
void ovl_rt_touch(struct ovl_rt *rt, const uint8_t target[32], uint64_t now);

/* The lowest-index non-empty bucket not touched since @before, or -1. */
int ovl_rt_stale_bucket(const struct ovl_rt *rt, uint64_t before);

/* A random id in bucket @i's range: @rnd (32 random bytes) with the
 * bucket's prefix imposed. */
void ovl_rt_random_id(const struct ovl_rt *rt, int i, const uint8_t rnd[32],
                      uint8_t out[32]);

/* ---- Record store -------------------------------------------------------------- */

struct ovl_store_entry {
    /* read-only for the caller */
    uint8_t key[32];
    uint64_t seq;
    uint8_t type;
    uint64_t expires;       /* Unix seconds */
    uint8_t owner[32];
    uint64_t stored_at;     /* now (ns) of the last accepted store */
    uint64_t republish_at;  /* now (ns): when this node republishes */
    uint16_t len;
    /* private */
    struct ovl_store_entry *next;
    uint8_t rec[];          /* len bytes */
};

struct ovl_store {
    struct ovl_store_entry **tab;
    uint32_t mask, count, max;
    uint64_t bytes;
};

enum ovl_store_put {
    OVL_PUT_STORED = 0,   /* new key, or replaced an older version */
    OVL_PUT_DUPLICATE,    /* exactly this version: refreshed stored_at */
    OVL_PUT_OLDER,        /* we have a newer one */
    OVL_PUT_OWNER,        /* live record of another owner (pinned) */
    OVL_PUT_FULL,
};

int ovl_store_init(struct ovl_store *st, uint32_t max_records);
void ovl_store_close(struct ovl_store *st);

/*
 * Offers the verified record @r. @pin_owner: refuse a different owner
 * while the stored version is live (no login authority). @republish_at is
 * stored when the entry changes or is refreshed. @now_s is the wall
 * clock. Returns the outcome; *out (may be NULL) gets the entry now held.
 */
enum ovl_store_put ovl_store_put(struct ovl_store *st,
                                 const struct ovl_record *r, bool pin_owner,
                                 uint64_t now, uint64_t now_s,
                                 uint64_t republish_at,
                                 const struct ovl_store_entry **out);

/* The live entry for @key, or NULL (expired entries are dropped). */
const struct ovl_store_entry *ovl_store_get(struct ovl_store *st,
                                            const uint8_t key[32],
                                            uint64_t now_s);

/* Drops expired entries; returns how many. */
uint32_t ovl_store_expire(struct ovl_store *st, uint64_t now_s);

/* Calls @fn for each entry with republish_at <= @now; @fn may set a new
 * republish_at through the (non-const) pointer. */
void ovl_store_each_due(struct ovl_store *st, uint64_t now,
                        void (*fn)(struct ovl_store_entry *e, void *data),
                        void *data);

/* ---- Lookup ------------------------------------------------------------------------ */

enum ovl_lookup_kind {
    OVL_LOOKUP_NODES = 0, /* FIND_NODE: the k closest */
    OVL_LOOKUP_VALUE = 1, /* FIND_VALUE: a record */
};

enum ovl_cand_state {
    OVL_CAND_NEW = 0,
    OVL_CAND_ASKED,
    OVL_CAND_ANSWERED,
    OVL_CAND_FAILED,
};

struct ovl_cand {
    struct ovl_contact c;
    uint8_t state; /* enum ovl_cand_state */
    uint8_t round; /* round it was asked in */
};

struct ovl_lookup {
    /* read-only for the caller */
    uint8_t target[32];
    uint8_t kind;
    uint8_t rounds;         /* rounds started */
    uint16_t messages;      /* queries sent */
    uint16_t inflight;      /* queries of the current round unanswered */
    bool found;
    bool done;
    uint16_t holder;        /* index of the closest candidate that gave a
                               record */
    uint64_t found_at;
    uint16_t rec_len;       /* best record found so far */
    uint8_t rec[OVL_RECORD_MAX];
    /* private */
    uint8_t self[32];
    uint8_t k, fanout0, fanout_max;
    uint16_t ncand;
    struct ovl_cand cand[OVL_LOOKUP_CANDS]; /* sorted, nearest first */
};

/* Starts a lookup for @target (we are @self, never a candidate). */
void ovl_lookup_init(struct ovl_lookup *l, enum ovl_lookup_kind kind,
                     const uint8_t target[32], const uint8_t self[32]);

/* Adds a candidate (duplicates and self are ignored; when the list is
 * full the farthest unasked one gives way to a nearer one). */
void ovl_lookup_add(struct ovl_lookup *l, const struct ovl_contact *c);

/*
 * When the current round is over (inflight == 0) and the lookup is not
 * done: starts the next round and writes the contacts to ask into @out
 * (at most @max). Returns how many; 0 means the lookup is now done (see
 * l->found). While a round is in flight it returns 0 and changes nothing.
 */
size_t ovl_lookup_next(struct ovl_lookup *l, uint64_t now,
                       struct ovl_contact *out, size_t max);

/* Answers and failures of candidate @id (ignored if not asked). */
void ovl_lookup_answered(struct ovl_lookup *l, const uint8_t id[32]);
void ovl_lookup_failed(struct ovl_lookup *l, const uint8_t id[32]);

/* A verified record from candidate @id: kept if newer than the best so
 * far. Counts as that candidate's answer. */
void ovl_lookup_value(struct ovl_lookup *l, const uint8_t id[32],
                      const struct ovl_record *r, uint64_t now);

/* Value lookups: a record was found and no closer candidate is left to
 * ask (only answers still in flight could improve on it). */
bool ovl_lookup_final(const struct ovl_lookup *l);

/* Value lookups: true once the lookup is final and either the round is
 * over or @grace has passed since the record was found (the caller then
 * finishes). */
bool ovl_lookup_can_finish(const struct ovl_lookup *l, uint64_t now,
                           uint64_t grace);

/* Up to @n closest candidates that answered, nearest first. */
size_t ovl_lookup_closest(const struct ovl_lookup *l, struct ovl_contact *out,
                          size_t n);

/* ---- Results cache --------------------------------------------------------------- */

enum { OVL_CACHE_WAYS = 4 };

struct ovl_cache_entry {
    uint8_t key[32];
    uint64_t seq;
    uint64_t expires;   /* record's expiry, Unix seconds */
    uint64_t cached_at; /* now (ns) */
    uint16_t len;       /* 0: negative entry ("no record") */
    bool used;
    uint8_t *rec;       /* heap copy */
};

struct ovl_cache {
    struct ovl_cache_entry *e;
    uint32_t set_mask;
    uint64_t ttl;       /* ns a positive entry is trusted */
    uint64_t neg_ttl;   /* ns a negative entry is trusted */
    uint64_t hits, misses, invalidations;
};

/* @entries is rounded up to a power of two times OVL_CACHE_WAYS. */
int ovl_cache_init(struct ovl_cache *c, uint32_t entries, uint64_t ttl,
                   uint64_t neg_ttl);
void ovl_cache_close(struct ovl_cache *c);

/* Stores a result: @r (verified) or NULL for "no record". A positive
 * entry is never replaced by an older seq. */
void ovl_cache_put(struct ovl_cache *c, const uint8_t key[32],
                   const struct ovl_record *r, uint64_t now);

/* A fresh entry for @key, or NULL. */
const struct ovl_cache_entry *ovl_cache_get(struct ovl_cache *c,
                                            const uint8_t key[32],
                                            uint64_t now, uint64_t now_s);

/* A version @seq of @key exists: drop a cached entry older than it. */
void ovl_cache_saw_seq(struct ovl_cache *c, const uint8_t key[32],
                       uint64_t seq);

#endif /* OVL_DHT_H */
