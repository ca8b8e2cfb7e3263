/*
 * ovl_session.c: one peer's secure session: keypair rotation, transport
 * encryption, and the timers, after WireGuard's noise.c (keypairs),
 * send.c/receive.c and timers.c.
 *
 * Keypairs. A session holds at most three: current (used to send),
 * previous (still accepted, for packets in flight across a rekey) and
 * next (a responder's fresh keys, not used to send until the initiator
 * proves it has them by sending under them). The initiator's new keys go
 * straight to current, since receiving the RESP already confirmed them.
 *
 * Timers, all derived from `now` handed in by the caller:
 *   handshake retransmit  REKEY_TIMEOUT + jitter after each INIT; new
 *                         ephemeral, timestamp and index every time
 *   give up               REKEY_ATTEMPT_TIME after the first INIT of an
 *                         attempt -> OVL_EV_HANDSHAKE_FAILED
 *   rekey (initiator)     current keys REKEY_AFTER_TIME old, or a send
 *                         crossed REKEY_AFTER_MESSAGES, or data sent and
 *                         nothing heard for KEEPALIVE + REKEY_TIMEOUT
 *   passive keepalive     KEEPALIVE_TIMEOUT after receiving data if nothing
 *                         was sent meanwhile; right after the initiator's
 *                         handshake completes (confirms the keys)
 *   persistent keepalive  optional, when idle that long (NAT bindings)
 *   expiry                each keypair REJECT_AFTER_TIME after its birth;
 *                         nothing left -> OVL_EV_EXPIRED
 */
#include "ovl_internal.h"

#include <sodium.h>

enum { DATA_HEAD = (int)sizeof(struct ovl_wire_data_head) };

static const struct ovl_limits *lim(const struct ovl_session *s)
{
    return &s->ep->limits;
}

static bool kp_usable(const struct ovl_session *s,
                      const struct ovl_keypair *kp, uint64_t now)
{
    return kp->valid && ovl__age(now, kp->birth) < lim(s)->reject_after_time &&
           kp->send_counter < lim(s)->reject_after_messages;
}

static void kp_clear(struct ovl_session *s, int slot)
{
    struct ovl_keypair *kp;

    if (slot == OVL_SLOT_NONE)
        return;
    kp = &s->kp[slot];
    if (kp->valid)
        ovl__index_remove(s->ep, kp->local_index);
    sodium_memzero(kp, sizeof(*kp));
    if (s->cur == slot)
        s->cur = OVL_SLOT_NONE;
    if (s->prev == slot)
        s->prev = OVL_SLOT_NONE;
    if (s->next == slot)
        s->next = OVL_SLOT_NONE;
}

/* Fills keypair @slot with fresh keys born at @now. */
static void kp_install(struct ovl_session *s, int slot,
                       const uint8_t send[OVL_AEAD_KEY_LEN],
                       const uint8_t recv[OVL_AEAD_KEY_LEN], uint64_t now,
                       uint32_t local_index, uint32_t remote_index,
                       bool initiator)
{
    struct ovl_keypair *kp = &s->kp[slot];

    memcpy(kp->send_key, send, OVL_AEAD_KEY_LEN);
    memcpy(kp->recv_key, recv, OVL_AEAD_KEY_LEN);
    ovl_replay_init(&kp->replay);
    kp->send_counter = 0;
    kp->birth = now;
    kp->local_index = local_index;
    kp->remote_index = remote_index;
    kp->initiator = initiator;
    kp->valid = true;
}

static int free_slot(const struct ovl_session *s)
{
    for (int i = 0; i < OVL_KP_SLOTS; i++)
        if (!s->kp[i].valid)
            return i;
    return OVL_SLOT_NONE;
}

static void hs_clear(struct ovl_session *s)
{
    if (s->hs.state == OVL_HS_INIT_SENT)
        ovl__index_remove(s->ep, s->hs.local_index);
    sodium_memzero(&s->hs, sizeof(s->hs));
    sodium_memzero(s->init_msg, s->init_len);
    s->init_len = 0;
    s->cookie_retried = false;
    s->hs_retry_at = OVL_NEVER;
}

static bool has_keys(const struct ovl_session *s)
{
    return s->cur != OVL_SLOT_NONE || s->prev != OVL_SLOT_NONE ||
           s->next != OVL_SLOT_NONE;
}

static int set_remote(struct ovl_session *s, const uint8_t *identity)
{
    if (ovl_ed_to_x25519(s->remote_static, identity) != 0)
        return -EINVAL;
    memcpy(s->remote_identity, identity, OVL_ED_PK_LEN);
    ovl_node_id(s->remote_node_id, identity);
    ovl_label_key(s->remote_mac1_key, "mac1----", s->remote_static);
    ovl_label_key(s->remote_cookie_key, "cookie--", s->remote_static);
    s->have_remote = true;
    return 0;
}

/* Records @addr as the peer's address; true if it changed. */
static bool set_addr(struct ovl_session *s, const struct ovl_datagram *in)
{
    if (in->stream || in->addr_len == 0)
        return false;
    if (in->addr_len == s->addr_len &&
        memcmp(in->addr, s->addr, in->addr_len) == 0)
        return false;
    memcpy(s->addr, in->addr, in->addr_len);
    s->addr_len = (uint8_t)in->addr_len;
    s->ep->counters.addr_changes++;
    return true;
}

int ovl_session_init(struct ovl_session *s, struct ovl_endpoint *ep,
                     const uint8_t *remote_identity)
{
    if (s == NULL || ep == NULL)
        return -EINVAL;
    memset(s, 0, sizeof(*s));
    s->ep = ep;
    s->cur = s->prev = s->next = OVL_SLOT_NONE;
    s->hs_retry_at = OVL_NEVER;
    s->hs_attempt_start = OVL_NEVER;
    s->cookie_birth = OVL_NEVER;
    s->last_sent = s->last_recv = OVL_NEVER;
    s->keepalive_due = OVL_NEVER;
    s->unanswered_since = OVL_NEVER;
    s->rekey_due = OVL_NEVER;
    if (remote_identity) {
        if (set_remote(s, remote_identity) != 0) {
            sodium_memzero(s, sizeof(*s));
            return -EINVAL;
        }
        s->initiator = true;
    }
    return 0;
}

void ovl_session_close(struct ovl_session *s)
{
    if (s == NULL || s->ep == NULL)
        return;
    for (int i = 0; i < OVL_KP_SLOTS; i++)
        kp_clear(s, i);
    hs_clear(s);
    sodium_memzero(s, sizeof(*s));
}

/* ---- Initiator: INIT ------------------------------------------------------- */

/* The INIT timestamp: wall clock extrapolated from `now`, whitened to
 * OVL_TIMESTAMP_GRANULE (as WireGuard does, so it does not leak precise
 * timing) and strictly increasing even if the wall clock steps back. */
static uint64_t next_timestamp(struct ovl_session *s, uint64_t now)
{
    uint64_t wall = now + s->wall_offset; /* mod 2^64, see connect */
    uint64_t nsec = wall % OVL_NS_PER_SEC;
    uint64_t ts = wall - nsec + (nsec & ~(OVL_TIMESTAMP_GRANULE - 1));

    if (ts <= s->last_ts)
        ts = s->last_ts + OVL_TIMESTAMP_GRANULE;
    s->last_ts = ts;
    return ts;
}

/* Builds and records a fresh INIT: new ephemeral key, timestamp and
 * sender index. @retransmit keeps the attempt's start time. */
static int start_handshake(struct ovl_session *s, uint64_t now, bool rekey,
                           bool retransmit, uint8_t *out, size_t cap,
                           size_t *out_len)
{
    struct ovl_endpoint *ep = s->ep;
    uint8_t e_sk[OVL_DH_LEN], tai64n[OVL_TAI64N_LEN];
    struct ovl_init_params p = {0};
    uint32_t index;
    int ret;

    p.app_len = rekey ? 0 : s->app_len;
    if (cap < OVL_INIT_MIN + p.app_len)
        return -ENOBUFS;
    hs_clear(s);
    ret = ovl__index_add(ep, s, OVL_SLOT_HS, &index);
    if (ret)
        return ret;

    ovl_rng_bytes(&ep->rng, e_sk, sizeof(e_sk));
    ovl__tai64n(tai64n, next_timestamp(s, now));
    p.local = ep->id;
    p.remote_static = s->remote_static;
    p.remote_mac1_key = s->remote_mac1_key;
    p.e_sk = e_sk;
    p.sender = index;
    p.tai64n = tai64n;
    p.flags = rekey ? OVL_INIT_FLAG_REKEY : 0;
    p.app = s->app;
    /* A cookie is good for COOKIE_SECRET_MAX_AGE minus the latency the
     * reply may have taken (WireGuard's rule). */
    if (s->cookie_birth != OVL_NEVER &&
        ovl__age(now, s->cookie_birth) <
            OVL_COOKIE_SECRET_MAX_AGE - OVL_COOKIE_SECRET_LATENCY)
        p.cookie = s->cookie;
    else
        s->cookie_birth = OVL_NEVER;

    ret = ovl__hs_initiator_start(&s->hs, &p, out, out_len);
    sodium_memzero(e_sk, sizeof(e_sk));
    if (ret) {
        ovl__index_remove(ep, index);
        memset(&s->hs, 0, sizeof(s->hs));
        return -EINVAL;
    }
    memcpy(s->init_msg, out, *out_len);
    s->init_len = (uint16_t)*out_len;
    s->hs_is_rekey = rekey;
    if (!retransmit)
        s->hs_attempt_start = now;
    s->hs_retry_at = now + lim(s)->rekey_timeout +
                     ovl_rng_uniform(&ep->rng, OVL_REKEY_TIMEOUT_JITTER);
    s->rekey_due = OVL_NEVER;
    s->last_sent = now;
    ep->counters.hs_init_sent++;
    return 0;
}

int ovl_session_connect(struct ovl_session *s, const uint8_t *addr,
                        size_t addr_len, bool stream, const uint8_t *app,
                        size_t app_len, uint64_t wall_ns, uint64_t now,
                        uint8_t *out, size_t cap, size_t *out_len)
{
    if (s == NULL || !s->initiator || !s->have_remote || out == NULL ||
        out_len == NULL || addr_len > OVL_ADDR_MAX ||
        (addr == NULL && addr_len) || (app == NULL && app_len))
        return -EINVAL;
    if (app_len > OVL_HS_APP_MAX)
        return -EMSGSIZE;
    if (cap < OVL_INIT_MIN + app_len)
        return -ENOBUFS;
    if (addr_len)
        memcpy(s->addr, addr, addr_len);
    s->addr_len = (uint8_t)addr_len;
    s->stream = stream;
    if (app_len)
        memcpy(s->app, app, app_len);
    s->app_len = (uint16_t)app_len;
    /* Unsigned arithmetic mod 2^64: now + offset == wall_ns. */
    s->wall_offset = wall_ns - now;
    s->started = true;
    s->dead = false;
    return start_handshake(s, now, false, false, out, cap, out_len);
}

/* ---- Initiator: RESP and COOKIE ----------------------------------------- */

int ovl__session_handle_resp(struct ovl_session *s,
                             const struct ovl_datagram *in, uint64_t now,
                             uint8_t *out, size_t out_cap, struct ovl_rx *rx)
{
    struct ovl_endpoint *ep = s->ep;
    uint8_t send[OVL_AEAD_KEY_LEN], recv[OVL_AEAD_KEY_LEN];
    enum ovl_drop drop;
    uint8_t status;
    uint32_t sender;
    size_t app_len;
    int slot;

    (void)out_cap; /* >= in->len, checked by the caller */
    if (s->hs.state != OVL_HS_INIT_SENT)
        return ovl__drop(ep, rx, OVL_DROP_UNEXPECTED);
    /* mac1 keyed by our own static key: cheap, before any DH. */
    if (!ovl__mac1_ok(in->buf, in->len, ep->mac1_key))
        return ovl__drop(ep, rx, OVL_DROP_BAD_MAC1);
    if (!ovl__mac2_zero(in->buf, in->len))
        return ovl__drop(ep, rx, OVL_DROP_BAD_MAC2);
    if (ovl__hs_initiator_handle_response(&s->hs, ep->id, in->buf, in->len,
                                          &status, &sender, out, &app_len,
                                          send, recv, &drop) != 0)
        return ovl__drop(ep, rx, drop);

    rx->kind = OVL_RX_RESPONSE;
    rx->session = s;
    rx->data = out;
    rx->data_len = app_len;
    if (set_addr(s, in))
        rx->events |= OVL_EV_ADDR_CHANGED;
    s->last_recv = now;
    s->unanswered_since = OVL_NEVER;

    if (status == OVL_RESP_REJECT) {
        hs_clear(s);
        ep->counters.hs_refused++;
        rx->events |= OVL_EV_REJECTED;
        /* Without keys the session is over; REJECTED says so already. */
        if (!has_keys(s))
            s->dead = true;
        return 0;
    }

    /* Rotate: the new keys become current, current becomes previous. An
     * unconfirmed next (we also accepted an INIT from this peer) loses. */
    kp_clear(s, s->next);
    kp_clear(s, s->prev);
    slot = free_slot(s);
    /* The INIT's index lives on as the new keypair's. */
    kp_install(s, slot, send, recv, now, s->hs.local_index, sender, true);
    ovl__index_set_slot(ep, s->hs.local_index, slot);
    s->hs.state = OVL_HS_NONE; /* its index now belongs to the keypair */
    hs_clear(s);
    s->prev = s->cur;
    s->cur = (int8_t)slot;
    s->dead = false;
    /* Confirm the keys to the responder right away unless data goes first. */
    s->keepalive_due = now;
    ep->counters.hs_completed++;
    rx->events |= OVL_EV_ESTABLISHED;
    sodium_memzero(send, sizeof(send));
    sodium_memzero(recv, sizeof(recv));
    return 0;
}

int ovl__session_handle_cookie(struct ovl_session *s,
                               const struct ovl_datagram *in, uint64_t now,
                               uint8_t *out, size_t out_cap,
                               struct ovl_rx *rx)
{
    struct ovl_endpoint *ep = s->ep;
    uint8_t cookie[OVL_MAC_LEN];
    const uint8_t *mac1;

    if (s->hs.state != OVL_HS_INIT_SENT || s->init_len == 0)
        return ovl__drop(ep, rx, OVL_DROP_UNEXPECTED);
    /* Associated data: the mac1 of the INIT we sent. */
    mac1 = s->init_msg + s->init_len - sizeof(struct ovl_wire_macs);
    /* Into a temporary: a forged COOKIE must not clobber a good cookie. */
    if (ovl__cookie_open(in->buf, s->remote_cookie_key, mac1, cookie)) {
        sodium_memzero(cookie, sizeof(cookie));
        return ovl__drop(ep, rx, OVL_DROP_DECRYPT);
    }
    memcpy(s->cookie, cookie, sizeof(cookie));
    sodium_memzero(cookie, sizeof(cookie));
    s->cookie_birth = now;
    ep->counters.cookies_received++;
    rx->session = s;
    /* The responder did not process that INIT (not even its timestamp),
     * so the same INIT with mac2 is a valid retry. Once per INIT: forged
     * cookies must not make us send INITs in a loop. */
    if (s->cookie_retried || out_cap < s->init_len) {
        rx->kind = OVL_RX_NONE;
        return 0;
    }
    ovl__macs_write(s->init_msg, s->init_len, s->remote_mac1_key, s->cookie);
    memcpy(out, s->init_msg, s->init_len);
    s->cookie_retried = true;
    s->last_sent = now;
    ep->counters.hs_init_sent++;
    rx->kind = OVL_RX_REPLY;
    rx->reply = out;
    rx->reply_len = s->init_len;
    return 0;
}

/* ---- Responder: accept ------------------------------------------------------- */

int ovl__hs_resp_check(const struct ovl_hs *hs, const uint8_t *app,
                       size_t app_len, size_t cap)
{
    if (hs == NULL || hs->state != OVL_HS_PENDING || (app == NULL && app_len))
        return -EINVAL;
    if (app_len > OVL_HS_APP_MAX || OVL_RESP_MIN + app_len > hs->init_len)
        return -EMSGSIZE;
    if (cap < OVL_RESP_MIN + app_len)
        return -ENOBUFS;
    return 0;
}

int ovl_hs_responder_accept(struct ovl_hs *hs, struct ovl_session *s,
                            const uint8_t *app, size_t app_len, uint64_t now,
                            uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t e_sk[OVL_DH_LEN];
    uint8_t send[OVL_AEAD_KEY_LEN], recv[OVL_AEAD_KEY_LEN];
    uint32_t index;
    int ret, slot;

    if (s == NULL || s->ep == NULL || out == NULL || out_len == NULL) {
        ret = -EINVAL;
        goto out;
    }
    ret = ovl__hs_resp_check(hs, app, app_len, cap);
    if (ret)
        goto out;
    if (s->have_remote ? sodium_memcmp(s->remote_identity,
                                       hs->remote_identity,
                                       OVL_ED_PK_LEN) != 0
                       : set_remote(s, hs->remote_identity) != 0) {
        ret = -EINVAL;
        goto out;
    }

    /* A newer handshake replaces an unconfirmed next. */
    kp_clear(s, s->next);
    slot = free_slot(s);
    ret = ovl__index_add(s->ep, s, slot, &index);
    if (ret)
        goto out;
    ovl_rng_bytes(&s->ep->rng, e_sk, sizeof(e_sk));
    ret = ovl__hs_respond(hs, OVL_RESP_ACCEPT, index, e_sk, app, app_len,
                          out, out_len, send, recv);
    if (ret) {
        ovl__index_remove(s->ep, index);
        ret = -EINVAL;
        goto out;
    }
    kp_install(s, slot, send, recv, now, index, hs->remote_index, false);
    s->next = (int8_t)slot;

    if (hs->addr_len || hs->stream) {
        memcpy(s->addr, hs->addr, hs->addr_len);
        s->addr_len = hs->addr_len;
        s->stream = hs->stream;
    }
    s->started = true;
    s->dead = false;
    s->last_sent = now;
    s->ep->counters.hs_accepted++;
out:
    sodium_memzero(e_sk, sizeof(e_sk));
    sodium_memzero(send, sizeof(send));
    sodium_memzero(recv, sizeof(recv));
    ovl_hs_discard(hs);
    return ret;
}

/* ---- Transport ------------------------------------------------------------------ */

int ovl_session_seal(struct ovl_session *s, const uint8_t *plain, size_t len,
                     uint64_t now, uint8_t *out, size_t cap, size_t *out_len)
{
    struct ovl_wire_data_head *head = (struct ovl_wire_data_head *)out;
    struct ovl_keypair *kp;
    uint64_t counter;

    if (s == NULL || s->ep == NULL || out == NULL || out_len == NULL ||
        (plain == NULL && len))
        return -EINVAL;
    if (len > OVL_DATA_MAX_PLAIN)
        return -EMSGSIZE;
    if (cap < len + OVL_DATA_OVERHEAD)
        return -ENOBUFS;
    if (s->cur == OVL_SLOT_NONE || !kp_usable(s, &s->kp[s->cur], now)) {
        if (s->initiator && s->started && s->hs.state == OVL_HS_NONE &&
            s->rekey_due == OVL_NEVER)
            s->rekey_due = now;
        return -ENOTCONN;
    }
    kp = &s->kp[s->cur];
    counter = kp->send_counter++;

    ovl_wire_put_hdr(out, OVL_MSG_DATA);
    ovl_store_le32(head->receiver_le, kp->remote_index);
    ovl_store_le64(head->counter_le, counter);
    /* The 16-byte head is the associated data: type, version and indices
     * are authenticated along with the payload. */
    ovl_aead_seal(out + DATA_HEAD, kp->send_key, counter, out, DATA_HEAD,
                  plain, len);
    *out_len = len + OVL_DATA_OVERHEAD;

    s->last_sent = now;
    s->keepalive_due = OVL_NEVER; /* anything sent is a keepalive */
    if (len) {
        s->ep->counters.tx_data++;
        s->ep->counters.tx_bytes += len;
        if (s->unanswered_since == OVL_NEVER)
            s->unanswered_since = now;
    } else {
        s->ep->counters.tx_keepalive++;
    }
    if (s->initiator && s->hs.state == OVL_HS_NONE &&
        s->rekey_due == OVL_NEVER &&
        (kp->send_counter >= lim(s)->rekey_after_messages ||
         ovl__age(now, kp->birth) >= lim(s)->rekey_after_time))
        s->rekey_due = now;
    return 0;
}

int ovl__session_open_slot(struct ovl_session *s, int slot,
                           const struct ovl_datagram *in, uint64_t now,
                           uint8_t *out, size_t out_cap, struct ovl_rx *rx)
{
    const struct ovl_wire_data_head *head =
        (const struct ovl_wire_data_head *)in->buf;
    struct ovl_endpoint *ep = s->ep;
    struct ovl_keypair *kp = &s->kp[slot];
    size_t plain_len = in->len - OVL_DATA_OVERHEAD;
    uint64_t counter = ovl_load_le64(head->counter_le);

    (void)out_cap; /* >= in->len, checked by the caller */
    if (!kp->valid)
        return ovl__drop(ep, rx, OVL_DROP_UNKNOWN_INDEX);
    if (ovl__age(now, kp->birth) >= lim(s)->reject_after_time ||
        counter >= lim(s)->reject_after_messages)
        return ovl__drop(ep, rx, OVL_DROP_KEY_EXPIRED);
    if (ovl_aead_open(out, kp->recv_key, counter, in->buf, DATA_HEAD,
                      in->buf + DATA_HEAD, in->len - DATA_HEAD) != 0)
        return ovl__drop(ep, rx, OVL_DROP_DECRYPT);
    /* Only now, authenticated, may the packet move the window. */
    if (!ovl_replay_check(&kp->replay, counter)) {
        sodium_memzero(out, plain_len);
        return ovl__drop(ep, rx, OVL_DROP_REPLAY);
    }

    rx->session = s;
    if (slot == s->next) {
        /* The initiator has the keys the responder derived: promote. */
        kp_clear(s, s->prev);
        s->prev = s->cur;
        s->cur = s->next;
        s->next = OVL_SLOT_NONE;
        rx->events |= OVL_EV_KEY_CONFIRMED;
    }
    if (set_addr(s, in))
        rx->events |= OVL_EV_ADDR_CHANGED;
    s->last_recv = now;
    s->unanswered_since = OVL_NEVER;
    s->dead = false;
    rx->data = out;
    rx->data_len = plain_len;
    if (plain_len) {
        ep->counters.rx_data++;
        ep->counters.rx_bytes += plain_len;
        rx->kind = OVL_RX_DATA;
        /* Answer within KEEPALIVE_TIMEOUT, with data or a keepalive. */
        s->keepalive_due = ovl__min(s->keepalive_due,
                                    ovl__add(now, lim(s)->keepalive_timeout));
    } else {
        ep->counters.rx_keepalive++;
        rx->kind = OVL_RX_KEEPALIVE;
    }
    return 0;
}

int ovl_session_open(struct ovl_session *s, const struct ovl_datagram *in,
                     uint64_t now, uint8_t *out, size_t out_cap,
                     struct ovl_rx *rx)
{
    enum ovl_msg_type type;
    enum ovl_drop drop;
    uint32_t index;

    if (rx == NULL)
        return -EINVAL;
    memset(rx, 0, sizeof(*rx));
    if (s == NULL || s->ep == NULL || in == NULL || out == NULL ||
        (in->buf == NULL && in->len) || in->addr_len > OVL_ADDR_MAX ||
        (in->addr == NULL && in->addr_len))
        return -EINVAL;
    if (out_cap < in->len) {
        ovl__drop(s->ep, rx, OVL_DROP_NO_SPACE);
        return -ENOBUFS;
    }
    if (ovl_wire_check(in->buf, in->len, &type, &drop) != 0)
        return ovl__drop(s->ep, rx, drop);
    if (type != OVL_MSG_DATA)
        return ovl__drop(s->ep, rx, OVL_DROP_UNEXPECTED);
    index = ovl_load_le32(in->buf + 4);
    for (int i = 0; i < OVL_KP_SLOTS; i++)
        if (s->kp[i].valid && s->kp[i].local_index == index)
            return ovl__session_open_slot(s, i, in, now, out, out_cap, rx);
    return ovl__drop(s->ep, rx, OVL_DROP_UNKNOWN_INDEX);
}

/* ---- Timers ----------------------------------------------------------------------- */

/* Whether the initiator should start a rekey now. */
static bool rekey_wanted(const struct ovl_session *s, uint64_t now)
{
    const struct ovl_keypair *kp;

    if (!s->initiator || !s->started || s->hs.state != OVL_HS_NONE ||
        s->cur == OVL_SLOT_NONE)
        return false;
    kp = &s->kp[s->cur];
    return now >= s->rekey_due ||
           ovl__age(now, kp->birth) >= lim(s)->rekey_after_time ||
           (s->unanswered_since != OVL_NEVER &&
            ovl__age(now, s->unanswered_since) >=
                lim(s)->keepalive_timeout + lim(s)->rekey_timeout);
}

static bool keepalive_wanted(const struct ovl_session *s, uint64_t now)
{
    if (now >= s->keepalive_due)
        return true;
    return lim(s)->persistent_keepalive && s->last_sent != OVL_NEVER &&
           ovl__age(now, s->last_sent) >= lim(s)->persistent_keepalive;
}

int ovl_session_timers(struct ovl_session *s, uint64_t now, uint8_t *out,
                       size_t cap, size_t *out_len, uint32_t *events)
{
    if (s == NULL || s->ep == NULL || out == NULL || out_len == NULL ||
        events == NULL)
        return -EINVAL;
    *out_len = 0;
    if (cap < OVL_INIT_MAX)
        return -ENOBUFS;

    /* Expiry: keys past REJECT_AFTER_TIME are useless either way. */
    for (int i = 0; i < OVL_KP_SLOTS; i++)
        if (s->kp[i].valid &&
            ovl__age(now, s->kp[i].birth) >= lim(s)->reject_after_time)
            kp_clear(s, i);

    if (s->hs.state == OVL_HS_INIT_SENT && now >= s->hs_retry_at) {
        if (ovl__age(now, s->hs_attempt_start) >=
            lim(s)->rekey_attempt_time) {
            /* Give up; what triggered the attempt does not trigger it
             * again at once (keys old enough still will). */
            hs_clear(s);
            s->unanswered_since = OVL_NEVER;
            s->rekey_due = OVL_NEVER;
            s->ep->counters.hs_failed++;
            *events |= OVL_EV_HANDSHAKE_FAILED;
        } else {
            return start_handshake(s, now, s->hs_is_rekey, true, out, cap,
                                   out_len);
        }
    }
    if (rekey_wanted(s, now))
        return start_handshake(s, now, true, false, out, cap, out_len);
    if (s->cur != OVL_SLOT_NONE && kp_usable(s, &s->kp[s->cur], now) &&
        keepalive_wanted(s, now))
        return ovl_session_seal(s, NULL, 0, now, out, cap, out_len);

    if (s->started && !s->dead && !has_keys(s) &&
        s->hs.state == OVL_HS_NONE) {
        s->dead = true;
        *events |= OVL_EV_EXPIRED;
    }
    return 0;
}

uint64_t ovl_session_next_timer(const struct ovl_session *s)
{
    const struct ovl_keypair *cur;
    uint64_t t = OVL_NEVER;

    if (s == NULL || s->ep == NULL)
        return OVL_NEVER;
    for (int i = 0; i < OVL_KP_SLOTS; i++)
        if (s->kp[i].valid)
            t = ovl__min(t, ovl__add(s->kp[i].birth,
                                     lim(s)->reject_after_time));
    if (s->hs.state == OVL_HS_INIT_SENT)
        t = ovl__min(t, s->hs_retry_at);
    if (s->cur != OVL_SLOT_NONE) {
        cur = &s->kp[s->cur];
        t = ovl__min(t, s->keepalive_due);
        if (lim(s)->persistent_keepalive && s->last_sent != OVL_NEVER)
            t = ovl__min(t, ovl__add(s->last_sent,
                                     lim(s)->persistent_keepalive));
        if (s->initiator && s->started && s->hs.state == OVL_HS_NONE) {
            t = ovl__min(t, s->rekey_due);
            t = ovl__min(t, ovl__add(cur->birth, lim(s)->rekey_after_time));
            if (s->unanswered_since != OVL_NEVER)
                t = ovl__min(t, ovl__add(s->unanswered_since,
                                         lim(s)->keepalive_timeout +
                                             lim(s)->rekey_timeout));
        }
    }
    /* Expiry to report: due at once (0 is never later than now). */
    if (s->started && !s->dead && !has_keys(s) &&
        s->hs.state == OVL_HS_NONE)
        t = 0;
    return t;
}

/* ---- Accessors ----------------------------------------------------------------------- */

const uint8_t *ovl_session_addr(const struct ovl_session *s, size_t *len)
{
    *len = s->addr_len;
    return s->addr;
}

const uint8_t *ovl_session_remote_identity(const struct ovl_session *s)
{
    return s->have_remote ? s->remote_identity : NULL;
}

bool ovl_session_can_send(const struct ovl_session *s, uint64_t now)
{
    return s->cur != OVL_SLOT_NONE && kp_usable(s, &s->kp[s->cur], now);
}
