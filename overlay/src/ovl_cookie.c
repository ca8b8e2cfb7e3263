/*
 * ovl_cookie.c: the cheap checks that run before any Diffie-Hellman, after
 * WireGuard's cookie.c and ratelimiter.c (and section 5.4 of its paper).
 *
 *  - mac1 = MAC(H("mac1----" || receiver's static key), msg up to mac1).
 *    Anyone who knows the receiver's public key can compute it, so it only
 *    proves the sender addressed *this* node; it costs one BLAKE2b and
 *    turns away random junk and scans before any DH.
 *  - Under load, INITs over UDP must also carry
 *    mac2 = MAC(cookie, msg up to mac2), cookie = MAC(Rm, source address),
 *    with Rm a secret that changes every two minutes. An INIT without a
 *    valid mac2 gets a COOKIE reply instead of a handshake: the cookie,
 *    encrypted with XChaCha20-Poly1305 under H("cookie--" || our static
 *    key) with the INIT's mac1 as associated data, so only whoever sent
 *    that INIT (and can read replies at that address) can use it. The
 *    reply (64 bytes) is smaller than any INIT (at least 184).
 *  - "Under load" is the caller's flag, or the built-in token bucket of
 *    handshakes per second running dry (then it holds for one second).
 *  - While under load, INITs that do carry a valid mac2 are still limited
 *    per source address (20/s, burst 5), in hashed buckets.
 *  MAC is keyed BLAKE2b with a 16-byte output (WireGuard uses BLAKE2s).
 */
#include "ovl_internal.h"

#include <sodium.h>

enum { MACS = (int)sizeof(struct ovl_wire_macs) };

void ovl__macs_write(uint8_t *msg, size_t len, const uint8_t mac1_key[32],
                     const uint8_t *cookie)
{
    struct ovl_wire_macs *m = (struct ovl_wire_macs *)(msg + len - MACS);

    ovl_mac16(m->mac1, mac1_key, 32, msg, len - MACS);
    if (cookie)
        ovl_mac16(m->mac2, cookie, OVL_MAC_LEN, msg, len - OVL_MAC_LEN);
    else
        memset(m->mac2, 0, OVL_MAC_LEN);
}

bool ovl__mac1_ok(const uint8_t *msg, size_t len, const uint8_t key[32])
{
    uint8_t mac[OVL_MAC_LEN];

    ovl_mac16(mac, key, 32, msg, len - MACS);
    return sodium_memcmp(mac, msg + len - MACS, OVL_MAC_LEN) == 0;
}

bool ovl__mac2_zero(const uint8_t *msg, size_t len)
{
    return sodium_is_zero(msg + len - OVL_MAC_LEN, OVL_MAC_LEN) != 0;
}

/* Rotates Rm lazily: a fresh secret every OVL_COOKIE_SECRET_MAX_AGE; the
 * previous one stays valid for one more period so that a cookie handed
 * out just before a rotation still works for its initiator's lifetime of
 * it (MAX_AGE - LATENCY). */
static void secret_refresh(struct ovl_endpoint *ep, uint64_t now)
{
    uint64_t age;

    if (ep->cookie_secret_birth != OVL_NEVER) {
        age = ovl__age(now, ep->cookie_secret_birth);
        if (age < OVL_COOKIE_SECRET_MAX_AGE)
            return;
        ep->cookie_prev_valid = age < 2 * OVL_COOKIE_SECRET_MAX_AGE;
        memcpy(ep->cookie_secret_prev, ep->cookie_secret, 32);
    }
    ovl_rng_bytes(&ep->rng, ep->cookie_secret, sizeof(ep->cookie_secret));
    ep->cookie_secret_birth = now;
}

static bool mac2_matches(const uint8_t secret[32], const uint8_t *msg,
                         size_t len, const uint8_t *addr, size_t addr_len)
{
    uint8_t cookie[OVL_MAC_LEN], mac[OVL_MAC_LEN];
    bool ok;

    ovl_mac16(cookie, secret, 32, addr, addr_len);
    ovl_mac16(mac, cookie, sizeof(cookie), msg, len - OVL_MAC_LEN);
    ok = sodium_memcmp(mac, msg + len - OVL_MAC_LEN, OVL_MAC_LEN) == 0;
    sodium_memzero(cookie, sizeof(cookie));
    return ok;
}

bool ovl__mac2_ok(struct ovl_endpoint *ep, uint64_t now, const uint8_t *msg,
                  size_t len, const uint8_t *addr, size_t addr_len)
{
    secret_refresh(ep, now);
    if (mac2_matches(ep->cookie_secret, msg, len, addr, addr_len))
        return true;
    return ep->cookie_prev_valid &&
           mac2_matches(ep->cookie_secret_prev, msg, len, addr, addr_len);
}

void ovl__cookie_reply(struct ovl_endpoint *ep, uint64_t now,
                       const uint8_t *msg, size_t len, const uint8_t *addr,
                       size_t addr_len, uint8_t *out)
{
    struct ovl_wire_cookie *c = (struct ovl_wire_cookie *)out;
    const uint8_t *mac1 = msg + len - MACS;
    uint8_t cookie[OVL_MAC_LEN];

    secret_refresh(ep, now);
    ovl_mac16(cookie, ep->cookie_secret, sizeof(ep->cookie_secret), addr,
              addr_len);
    ovl_wire_put_hdr(out, OVL_MSG_COOKIE);
    /* The INIT's sender index: the initiator finds its handshake by it. */
    memcpy(c->receiver_le, msg + 4, 4);
    ovl_rng_bytes(&ep->rng, c->nonce, sizeof(c->nonce));
    crypto_aead_xchacha20poly1305_ietf_encrypt(c->enc_cookie, NULL, cookie,
                                               sizeof(cookie), mac1,
                                               OVL_MAC_LEN, NULL, c->nonce,
                                               ep->cookie_key);
    sodium_memzero(cookie, sizeof(cookie));
}

int ovl__cookie_open(const uint8_t *msg, const uint8_t key[32],
                     const uint8_t mac1[OVL_MAC_LEN],
                     uint8_t cookie[OVL_MAC_LEN])
{
    const struct ovl_wire_cookie *c = (const struct ovl_wire_cookie *)msg;

    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            cookie, NULL, NULL, c->enc_cookie, sizeof(c->enc_cookie), mac1,
            OVL_MAC_LEN, c->nonce, key) != 0)
        return -EBADMSG;
    return 0;
}

/* Token bucket in nanoseconds of credit: each event costs @cost, credit
 * accrues one per ns up to @cap (= burst * cost). */
static bool bucket_take(struct ovl_bucket *b, uint64_t now, uint64_t cost,
                        uint64_t cap)
{
    if (now > b->last) {
        b->tokens = ovl__min(cap, ovl__add(b->tokens, now - b->last));
        b->last = now;
    }
    if (b->tokens < cost)
        return false;
    b->tokens -= cost;
    return true;
}

bool ovl__load_take(struct ovl_endpoint *ep, uint64_t now)
{
    if (ep->force_under_load || now < ep->under_load_until)
        return true;
    if (ep->hs_cost == 0)
        return false; /* no built-in limit */
    if (bucket_take(&ep->hs_bucket, now, ep->hs_cost, ep->hs_cap))
        return false;
    ep->under_load_until = now + OVL_UNDER_LOAD_HOLD;
    ep->counters.under_load_entered++;
    return true;
}

bool ovl__addr_allow(struct ovl_endpoint *ep, uint64_t now,
                     const uint8_t *addr, size_t addr_len)
{
    const uint64_t cost = OVL_NS_PER_SEC / OVL_ADDR_RATE;
    uint8_t h[crypto_shorthash_BYTES];
    uint32_t slot;

    /* Keyed hash: a sender cannot aim at another source's bucket. */
    crypto_shorthash(h, addr, addr_len, ep->hash_key);
    slot = ovl_load_le32(h) & (OVL_ADDR_BUCKETS - 1);
    return bucket_take(&ep->addr_buckets[slot], now, cost,
                       cost * OVL_ADDR_BURST);
}
