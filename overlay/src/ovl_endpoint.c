/*
 * ovl_endpoint.c: one local identity's receive path. It checks the common
 * header, runs the DoS checks before any DH, handles INIT (responder),
 * KEY_REQ/KEY_REPLY, and routes RESP, COOKIE and DATA to their session by
 * receiver index. Also home of the two tables: session indices and the
 * greatest INIT timestamp per initiator key.
 */
#include "ovl_internal.h"

#include <sodium.h>
#include <stdlib.h>

enum {
    TS_WAYS = 4,            /* timestamp table associativity */
    INDEX_TRIES = 64,       /* random draws before giving up */
    MAX_SESSIONS_LIMIT = 1 << 22,
    MAX_PEERS_LIMIT = 1 << 24,
};

/* One slot of the open-addressing index table. */
struct ovl_index_entry {
    struct ovl_session *s; /* NULL: empty */
    uint32_t index;
    int8_t slot;           /* keypair slot or OVL_SLOT_HS */
};

/* One way of the set-associative INIT timestamp table. */
struct ovl_ts_entry {
    uint8_t key[OVL_X_LEN];           /* initiator's static key */
    uint8_t tai64n[OVL_TAI64N_LEN];   /* greatest accepted */
    uint64_t last_init;               /* now of that INIT */
    bool used;
};

int ovl__drop(struct ovl_endpoint *ep, struct ovl_rx *rx,
              enum ovl_drop reason)
{
    ep->counters.drops[reason]++;
    rx->drop = reason;
    rx->kind = OVL_RX_NONE;
    return -EBADMSG;
}

/* ---- Index table ---------------------------------------------------------- */

static uint32_t index_home(const struct ovl_endpoint *ep, uint32_t index)
{
    /* Indices are random already; the multiply only spreads any bias of a
     * test RNG over the table. */
    return (index * 0x9E3779B1u) & ep->idx_mask;
}

static struct ovl_index_entry *index_find(const struct ovl_endpoint *ep,
                                          uint32_t index)
{
    for (uint32_t i = index_home(ep, index);; i = (i + 1) & ep->idx_mask) {
        struct ovl_index_entry *e = &ep->idx[i];
        if (e->s == NULL)
            return NULL;
        if (e->index == index)
            return e;
    }
}

struct ovl_session *ovl__index_lookup(const struct ovl_endpoint *ep,
                                      uint32_t index, int *slot)
{
    struct ovl_index_entry *e = index_find(ep, index);

    if (e == NULL)
        return NULL;
    *slot = e->slot;
    return e->s;
}

int ovl__index_add(struct ovl_endpoint *ep, struct ovl_session *s, int slot,
                   uint32_t *index)
{
    uint8_t b[4];
    uint32_t v, i;

    if (ep->idx_count >= ep->idx_max)
        return -ENOSPC;
    for (int tries = 0; tries < INDEX_TRIES; tries++) {
        ovl_rng_bytes(&ep->rng, b, sizeof(b));
        v = ovl_load_le32(b);
        /* 0 means "no index" in a REJECT. */
        if (v == 0 || index_find(ep, v) != NULL)
            continue;
        for (i = index_home(ep, v); ep->idx[i].s; i = (i + 1) & ep->idx_mask)
            ;
        ep->idx[i].s = s;
        ep->idx[i].index = v;
        ep->idx[i].slot = (int8_t)slot;
        ep->idx_count++;
        *index = v;
        return 0;
    }
    return -ENOSPC;
}

void ovl__index_set_slot(struct ovl_endpoint *ep, uint32_t index, int slot)
{
    struct ovl_index_entry *e = index_find(ep, index);

    if (e)
        e->slot = (int8_t)slot;
}

void ovl__index_remove(struct ovl_endpoint *ep, uint32_t index)
{
    struct ovl_index_entry *e = index_find(ep, index);
    uint32_t i, j, k;

    if (e == NULL)
        return;
    /* Backward-shift deletion (Knuth 6.4, algorithm R): move later
     * entries of the probe run into the hole so lookups never stop early. */
    i = (uint32_t)(e - ep->idx);
    ep->idx[i].s = NULL;
    ep->idx_count--;
    for (j = (i + 1) & ep->idx_mask; ep->idx[j].s; j = (j + 1) & ep->idx_mask) {
        k = index_home(ep, ep->idx[j].index);
        /* Leave entry j alone if its home lies cyclically in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        ep->idx[i] = ep->idx[j];
        ep->idx[j].s = NULL;
        i = j;
    }
}

/* ---- INIT timestamp table ------------------------------------------------- */

/* Accepts @ts for initiator @key if it is newer than any seen and the
 * previous INIT from that key is at least OVL_INIT_MIN_INTERVAL old
 * (WireGuard's replay and flood checks), and records it. */
static int ts_check(struct ovl_endpoint *ep, const uint8_t key[OVL_X_LEN],
                    const uint8_t ts[OVL_TAI64N_LEN], uint64_t now,
                    enum ovl_drop *drop)
{
    uint8_t h[crypto_shorthash_BYTES];
    struct ovl_ts_entry *set, *e = NULL, *victim = NULL;

    crypto_shorthash(h, key, OVL_X_LEN, ep->hash_key);
    set = &ep->ts[(ovl_load_le32(h) & ep->ts_set_mask) * TS_WAYS];
    for (int w = 0; w < TS_WAYS; w++) {
        if (set[w].used && sodium_memcmp(set[w].key, key, OVL_X_LEN) == 0) {
            e = &set[w];
            break;
        }
        if (victim == NULL || !set[w].used ||
            (victim->used && set[w].last_init < victim->last_init))
            victim = &set[w];
    }
    if (e) {
        if (memcmp(ts, e->tai64n, OVL_TAI64N_LEN) <= 0) {
            *drop = OVL_DROP_STALE_TIMESTAMP;
            return -EBADMSG;
        }
        if (ovl__age(now, e->last_init) < OVL_INIT_MIN_INTERVAL) {
            *drop = OVL_DROP_RATE_LIMITED;
            return -EBADMSG;
        }
    } else {
        /* A full set forgets its least recently active initiator; see
         * docs/protocol.md for why that is safe enough. */
        e = victim;
        if (e->used)
            ep->counters.timestamp_evictions++;
        memcpy(e->key, key, OVL_X_LEN);
        e->used = true;
    }
    memcpy(e->tai64n, ts, OVL_TAI64N_LEN);
    e->last_init = now;
    return 0;
}

/* ---- Init and close --------------------------------------------------------- */

static uint64_t or_default(uint64_t v, uint64_t def)
{
    return v ? v : def;
}

void ovl_limits_default(struct ovl_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->rekey_after_time = OVL_REKEY_AFTER_TIME;
    l->reject_after_time = OVL_REJECT_AFTER_TIME;
    l->rekey_attempt_time = OVL_REKEY_ATTEMPT_TIME;
    l->rekey_timeout = OVL_REKEY_TIMEOUT;
    l->keepalive_timeout = OVL_KEEPALIVE_TIMEOUT;
    l->rekey_after_messages = OVL_REKEY_AFTER_MESSAGES;
    l->reject_after_messages = OVL_REJECT_AFTER_MESSAGES;
}

static void fill_limits(struct ovl_limits *dst, const struct ovl_limits *src)
{
    struct ovl_limits d;

    ovl_limits_default(&d);
    dst->rekey_after_time = or_default(src->rekey_after_time,
                                       d.rekey_after_time);
    dst->reject_after_time = or_default(src->reject_after_time,
                                        d.reject_after_time);
    dst->rekey_attempt_time = or_default(src->rekey_attempt_time,
                                         d.rekey_attempt_time);
    dst->rekey_timeout = or_default(src->rekey_timeout, d.rekey_timeout);
    dst->keepalive_timeout = or_default(src->keepalive_timeout,
                                        d.keepalive_timeout);
    dst->rekey_after_messages = or_default(src->rekey_after_messages,
                                           d.rekey_after_messages);
    /* The replay window cannot judge counters beyond its own limit. */
    dst->reject_after_messages =
        ovl__min(or_default(src->reject_after_messages,
                            d.reject_after_messages),
                 OVL_REJECT_AFTER_MESSAGES);
    dst->persistent_keepalive = src->persistent_keepalive;
}

static uint32_t pow2_at_least(uint32_t v)
{
    uint32_t p = 1;

    while (p < v)
        p <<= 1;
    return p;
}

int ovl_endpoint_init(struct ovl_endpoint *ep,
                      const struct ovl_endpoint_config *cfg)
{
    uint32_t sessions, peers, rate, burst, idx_size, sets;

    if (ep == NULL || cfg == NULL || cfg->identity == NULL)
        return -EINVAL;
    sessions = cfg->max_sessions ? cfg->max_sessions
                                 : OVL_DEFAULT_MAX_SESSIONS;
    peers = cfg->max_peers ? cfg->max_peers : OVL_DEFAULT_MAX_PEERS;
    if (sessions > MAX_SESSIONS_LIMIT || peers > MAX_PEERS_LIMIT)
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;

    memset(ep, 0, sizeof(*ep));
    ep->id = cfg->identity;
    ep->rng = cfg->rng;
    ep->responder = cfg->responder;
    fill_limits(&ep->limits, &cfg->limits);
    ovl_label_key(ep->mac1_key, "mac1----", ep->id->x_pk);
    ovl_label_key(ep->cookie_key, "cookie--", ep->id->x_pk);
    ovl_rng_bytes(&ep->rng, ep->hash_key, sizeof(ep->hash_key));
    ep->cookie_secret_birth = OVL_NEVER;

    rate = cfg->handshake_rate ? cfg->handshake_rate
                               : OVL_DEFAULT_HANDSHAKE_RATE;
    burst = cfg->handshake_burst ? cfg->handshake_burst
                                 : OVL_DEFAULT_HANDSHAKE_BURST;
    if (rate != UINT32_MAX) {
        ep->hs_cost = OVL_NS_PER_SEC / rate ? OVL_NS_PER_SEC / rate : 1;
        ep->hs_cap = ep->hs_cost * burst;
        ep->hs_bucket.tokens = ep->hs_cap;
    }

    ep->idx_max = sessions * (OVL_KP_SLOTS + 1);
    idx_size = pow2_at_least(ep->idx_max * 2);
    ep->idx_mask = idx_size - 1;
    sets = pow2_at_least((peers + TS_WAYS - 1) / TS_WAYS);
    ep->ts_set_mask = sets - 1;

    ep->idx = calloc(idx_size, sizeof(*ep->idx));
    ep->ts = calloc((size_t)sets * TS_WAYS, sizeof(*ep->ts));
    ep->addr_buckets = calloc(OVL_ADDR_BUCKETS, sizeof(*ep->addr_buckets));
    if (ep->idx == NULL || ep->ts == NULL || ep->addr_buckets == NULL) {
        ovl_endpoint_close(ep);
        return -ENOMEM;
    }
    for (int i = 0; i < OVL_ADDR_BUCKETS; i++)
        ep->addr_buckets[i].tokens =
            OVL_NS_PER_SEC / OVL_ADDR_RATE * OVL_ADDR_BURST;
    return 0;
}

void ovl_endpoint_close(struct ovl_endpoint *ep)
{
    if (ep == NULL)
        return;
    free(ep->idx);
    free(ep->ts);
    free(ep->addr_buckets);
    sodium_memzero(ep, sizeof(*ep));
}

void ovl_endpoint_set_under_load(struct ovl_endpoint *ep, bool on)
{
    ep->force_under_load = on;
}

bool ovl_endpoint_under_load(const struct ovl_endpoint *ep, uint64_t now)
{
    return ep->force_under_load || now < ep->under_load_until;
}

/* ---- INIT (responder) ------------------------------------------------------- */

static int recv_init(struct ovl_endpoint *ep, const struct ovl_datagram *in,
                     uint64_t now, struct ovl_hs *hs, uint8_t *out,
                     struct ovl_rx *rx)
{
    uint8_t tai64n[OVL_TAI64N_LEN];
    enum ovl_drop drop;
    bool mac2_valid = false, under_load;
    size_t app_len;

    if (!ep->responder || hs == NULL)
        return ovl__drop(ep, rx, OVL_DROP_UNEXPECTED);
    /* mac1 first: one BLAKE2b, no DH, for anything that claims to be an
     * INIT. */
    if (!ovl__mac1_ok(in->buf, in->len, ep->mac1_key))
        return ovl__drop(ep, rx, OVL_DROP_BAD_MAC1);

    if (!in->stream && !ovl__mac2_zero(in->buf, in->len)) {
        mac2_valid = ovl__mac2_ok(ep, now, in->buf, in->len, in->addr,
                                  in->addr_len);
        if (!mac2_valid) {
            drop = OVL_DROP_BAD_MAC2; /* stale cookie or tampering */
            goto cookie;
        }
    }
    under_load = ovl__load_take(ep, now);
    if (under_load) {
        if (!in->stream && !mac2_valid) {
            drop = OVL_DROP_MAC2_NEEDED;
            goto cookie;
        }
        if (!ovl__addr_allow(ep, now, in->addr, in->addr_len))
            return ovl__drop(ep, rx, OVL_DROP_RATE_LIMITED);
    }

    /* Now the expensive part: four DHs' worth of Noise. */
    if (ovl__hs_responder_handle_init(hs, ep->id, in->buf, in->len, tai64n,
                                      out, &app_len, &drop) != 0)
        return ovl__drop(ep, rx, drop);
    if (ts_check(ep, hs->ik.rs, tai64n, now, &drop) != 0) {
        ovl_hs_discard(hs);
        return ovl__drop(ep, rx, drop);
    }
    if (in->addr_len)
        memcpy(hs->addr, in->addr, in->addr_len);
    hs->addr_len = (uint8_t)in->addr_len;
    hs->stream = in->stream;
    ep->counters.hs_init_valid++;

    rx->kind = OVL_RX_HANDSHAKE;
    rx->data = out;
    rx->data_len = app_len;
    memcpy(rx->peer.identity, hs->remote_identity, OVL_ED_PK_LEN);
    ovl_node_id(rx->peer.node_id, hs->remote_identity);
    memcpy(rx->peer.static_pk, hs->ik.rs, OVL_X_LEN);
    rx->peer.flags = hs->flags;
    return 0;

cookie:
    /* Not processed; answer with a cookie (64 bytes < any INIT). */
    ep->counters.drops[drop]++;
    ep->counters.cookies_sent++;
    ovl__cookie_reply(ep, now, in->buf, in->len, in->addr, in->addr_len, out);
    rx->kind = OVL_RX_REPLY;
    rx->drop = drop;
    rx->reply = out;
    rx->reply_len = OVL_COOKIE_LEN;
    return 0;
}

/* ---- KEY_REQ / KEY_REPLY ---------------------------------------------------- */

static int recv_key_req(struct ovl_endpoint *ep, const struct ovl_datagram *in,
                        uint8_t *out, struct ovl_rx *rx)
{
    const struct ovl_wire_key_req *req =
        (const struct ovl_wire_key_req *)in->buf;
    struct ovl_wire_key_reply *rep = (struct ovl_wire_key_reply *)out;

    if (!ep->responder)
        return ovl__drop(ep, rx, OVL_DROP_UNEXPECTED);
    if (!sodium_is_zero(req->padding, sizeof(req->padding)))
        return ovl__drop(ep, rx, OVL_DROP_BAD_HEADER);
    /* No crypto and a smaller answer: nothing to gain by spoofing. */
    memmove(rep->request_id, req->request_id, OVL_REQUEST_ID_LEN);
    ovl_wire_put_hdr(out, OVL_MSG_KEY_REPLY);
    memcpy(rep->identity, ep->id->ed_pk, OVL_ED_PK_LEN);
    ep->counters.key_replies_sent++;
    rx->kind = OVL_RX_REPLY;
    rx->reply = out;
    rx->reply_len = OVL_KEY_REPLY_LEN;
    return 0;
}

static int recv_key_reply(struct ovl_endpoint *ep,
                          const struct ovl_datagram *in, uint64_t now,
                          struct ovl_rx *rx)
{
    const struct ovl_wire_key_reply *rep =
        (const struct ovl_wire_key_reply *)in->buf;

    for (int i = 0; i < OVL_KEY_REQUESTS_MAX; i++) {
        if (!ep->keyreq[i].used || now >= ep->keyreq[i].expires ||
            sodium_memcmp(ep->keyreq[i].id, rep->request_id,
                          OVL_REQUEST_ID_LEN) != 0)
            continue;
        if (ovl_ed_to_x25519(rx->peer.static_pk, rep->identity) != 0)
            return ovl__drop(ep, rx, OVL_DROP_BAD_KEY);
        ep->keyreq[i].used = false;
        memcpy(rx->peer.identity, rep->identity, OVL_ED_PK_LEN);
        ovl_node_id(rx->peer.node_id, rep->identity);
        rx->kind = OVL_RX_KEY_REPLY;
        return 0;
    }
    return ovl__drop(ep, rx, OVL_DROP_UNEXPECTED);
}

int ovl_endpoint_key_request(struct ovl_endpoint *ep, uint64_t now,
                             uint8_t *out, size_t cap, size_t *out_len)
{
    struct ovl_wire_key_req *req = (struct ovl_wire_key_req *)out;
    int slot = 0;

    if (cap < OVL_KEY_REQ_LEN)
        return -ENOBUFS;
    /* A free or expired slot, else the one expiring first. */
    for (int i = 0; i < OVL_KEY_REQUESTS_MAX; i++) {
        if (!ep->keyreq[i].used || now >= ep->keyreq[i].expires) {
            slot = i;
            break;
        }
        if (ep->keyreq[i].expires < ep->keyreq[slot].expires)
            slot = i;
    }
    memset(out, 0, OVL_KEY_REQ_LEN);
    ovl_wire_put_hdr(out, OVL_MSG_KEY_REQ);
    ovl_rng_bytes(&ep->rng, req->request_id, OVL_REQUEST_ID_LEN);
    memcpy(ep->keyreq[slot].id, req->request_id, OVL_REQUEST_ID_LEN);
    ep->keyreq[slot].expires = ovl__add(now, ep->limits.rekey_timeout);
    ep->keyreq[slot].used = true;
    *out_len = OVL_KEY_REQ_LEN;
    return 0;
}

/* ---- Dispatch --------------------------------------------------------------- */

int ovl_endpoint_recv(struct ovl_endpoint *ep, const struct ovl_datagram *in,
                      uint64_t now, struct ovl_hs *hs, uint8_t *out,
                      size_t out_cap, struct ovl_rx *rx)
{
    enum ovl_msg_type type;
    enum ovl_drop drop;
    struct ovl_session *s;
    int slot;

    if (rx == NULL)
        return -EINVAL;
    memset(rx, 0, sizeof(*rx));
    if (ep == NULL || in == NULL || out == NULL ||
        (in->buf == NULL && in->len) || in->addr_len > OVL_ADDR_MAX ||
        (in->addr == NULL && in->addr_len))
        return -EINVAL;
    if (out_cap < in->len || out_cap < OVL_INIT_MAX) {
        ovl__drop(ep, rx, OVL_DROP_NO_SPACE);
        return -ENOBUFS;
    }
    if (ovl_wire_check(in->buf, in->len, &type, &drop) != 0)
        return ovl__drop(ep, rx, drop);

    switch (type) {
    case OVL_MSG_INIT:
        return recv_init(ep, in, now, hs, out, rx);
    case OVL_MSG_KEY_REQ:
        return recv_key_req(ep, in, out, rx);
    case OVL_MSG_KEY_REPLY:
        return recv_key_reply(ep, in, now, rx);
    case OVL_MSG_RESP:
    case OVL_MSG_COOKIE:
    case OVL_MSG_DATA:
        break;
    default:
        return ovl__drop(ep, rx, OVL_DROP_BAD_TYPE);
    }

    /* The rest name their receiver at offset 4. */
    s = ovl__index_lookup(ep, ovl_load_le32(in->buf + 4), &slot);
    if (s == NULL)
        return ovl__drop(ep, rx, OVL_DROP_UNKNOWN_INDEX);
    if (type == OVL_MSG_DATA) {
        if (slot == OVL_SLOT_HS)
            return ovl__drop(ep, rx, OVL_DROP_UNKNOWN_INDEX);
        return ovl__session_open_slot(s, slot, in, now, out, out_cap, rx);
    }
    if (slot != OVL_SLOT_HS)
        return ovl__drop(ep, rx, OVL_DROP_UNEXPECTED);
    if (type == OVL_MSG_RESP)
        return ovl__session_handle_resp(s, in, now, out, out_cap, rx);
    return ovl__session_handle_cookie(s, in, now, out, out_cap, rx);
}

/* ---- Responder verdicts without a session ---------------------------------- */

void ovl_hs_discard(struct ovl_hs *hs)
{
    if (hs)
        sodium_memzero(hs, sizeof(*hs));
}

int ovl_hs_responder_reject(struct ovl_hs *hs, struct ovl_endpoint *ep,
                            const uint8_t *app, size_t app_len,
                            uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t e_sk[OVL_DH_LEN];
    int ret;

    if (ep == NULL) {
        ret = -EINVAL;
        goto out;
    }
    ret = ovl__hs_resp_check(hs, app, app_len, cap);
    if (ret)
        goto out;
    ovl_rng_bytes(&ep->rng, e_sk, sizeof(e_sk));
    ret = ovl__hs_respond(hs, OVL_RESP_REJECT, 0, e_sk, app, app_len, out,
                          out_len, NULL, NULL);
    if (ret == 0)
        ep->counters.hs_rejected++;
    else
        ret = -EINVAL;
out:
    sodium_memzero(e_sk, sizeof(e_sk));
    ovl_hs_discard(hs);
    return ret;
}
