/*
 * ovl_internal.h (private): what the overlay's secure-session files share.
 * Cross-file internals carry the ovl__ prefix.
 */
#ifndef OVL_INTERNAL_H
#define OVL_INTERNAL_H

#include "ovl_secure.h"

#include <errno.h>
#include <string.h>

enum {
    OVL_PROLOGUE_LEN = (int)sizeof(OVL_PROLOGUE) - 1 + 8,
    OVL_INIT_PLAIN_MAX = (int)sizeof(struct ovl_wire_init_plain) +
                         OVL_HS_APP_MAX,
    OVL_RESP_PLAIN_MAX = (int)sizeof(struct ovl_wire_resp_plain) +
                         OVL_HS_APP_MAX,
};

/* ---- ovl_endpoint.c ---------------------------------------------------- */

/* Counts @reason, stores it in @rx and returns -EBADMSG. */
int ovl__drop(struct ovl_endpoint *ep, struct ovl_rx *rx,
              enum ovl_drop reason);

/* Registers a fresh random index for (@s, @slot). Returns 0 or -ENOSPC. */
int ovl__index_add(struct ovl_endpoint *ep, struct ovl_session *s, int slot,
                   uint32_t *index);
void ovl__index_remove(struct ovl_endpoint *ep, uint32_t index);
/* Re-points an existing index at another slot of the same session. */
void ovl__index_set_slot(struct ovl_endpoint *ep, uint32_t index, int slot);
struct ovl_session *ovl__index_lookup(const struct ovl_endpoint *ep,
                                      uint32_t index, int *slot);

/* ---- ovl_cookie.c: mac1, mac2, cookies, load ---------------------------- */

/* Writes mac1 (keyed by @mac1_key) and mac2 (keyed by @cookie, or zero)
 * at the end of the @len-byte INIT or RESP in @msg. */
void ovl__macs_write(uint8_t *msg, size_t len, const uint8_t mac1_key[32],
                     const uint8_t *cookie);
bool ovl__mac1_ok(const uint8_t *msg, size_t len, const uint8_t key[32]);
bool ovl__mac2_zero(const uint8_t *msg, size_t len);
/* Checks mac2 against the cookie this endpoint would give @addr now (or
 * gave it under the previous secret). */
bool ovl__mac2_ok(struct ovl_endpoint *ep, uint64_t now, const uint8_t *msg,
                  size_t len, const uint8_t *addr, size_t addr_len);
/* Writes the OVL_COOKIE_LEN-byte COOKIE answering the INIT @msg. */
void ovl__cookie_reply(struct ovl_endpoint *ep, uint64_t now,
                       const uint8_t *msg, size_t len, const uint8_t *addr,
                       size_t addr_len, uint8_t *out);
/* Decrypts a COOKIE with the peer's cookie key and the mac1 we sent.
 * Returns 0 or -EBADMSG. */
int ovl__cookie_open(const uint8_t *msg, const uint8_t key[32],
                     const uint8_t mac1[OVL_MAC_LEN],
                     uint8_t cookie[OVL_MAC_LEN]);
/* True when INITs must carry mac2. Otherwise takes one token from the
 * handshake bucket, entering the under-load state if there was none. */
bool ovl__load_take(struct ovl_endpoint *ep, uint64_t now);
/* Per-source limit applied while under load. */
bool ovl__addr_allow(struct ovl_endpoint *ep, uint64_t now,
                     const uint8_t *addr, size_t addr_len);

/* ---- ovl_handshake.c: INIT and RESP --------------------------------------- */

/* TAI64N of @unix_ns (the label 2^62 + 10 + seconds, then nanoseconds). */
void ovl__tai64n(uint8_t out[OVL_TAI64N_LEN], uint64_t unix_ns);

struct ovl_init_params {
    const struct ovl_identity *local;
    const uint8_t *remote_static;  /* 32 */
    const uint8_t *remote_mac1_key; /* 32 */
    const uint8_t *e_sk;           /* 32 random bytes */
    uint32_t sender;
    const uint8_t *tai64n;         /* 12 */
    uint8_t flags;
    const uint8_t *app;
    size_t app_len;
    const uint8_t *cookie;         /* NULL: mac2 zero */
};

/* Writes an INIT (OVL_INIT_MIN + app_len bytes) and leaves @hs waiting
 * for the RESP. Returns 0 or -EINVAL (the remote key gives a zero DH). */
int ovl__hs_initiator_start(struct ovl_hs *hs, const struct ovl_init_params *p,
                            uint8_t *out, size_t *out_len);

/* Responder: authenticates an INIT whose macs were checked. Fills @hs
 * (PENDING), the peer's timestamp and the app payload. Returns 0 or
 * -EBADMSG with *drop set; @hs is wiped on failure. */
int ovl__hs_responder_handle_init(struct ovl_hs *hs,
                                  const struct ovl_identity *local,
                                  const uint8_t *msg, size_t len,
                                  uint8_t tai64n[OVL_TAI64N_LEN],
                                  uint8_t *app, size_t *app_len,
                                  enum ovl_drop *drop);

/* Responder: writes the RESP (OVL_RESP_MIN + app_len bytes) for @status.
 * With @send/@recv non-NULL also derives the transport keys. */
/* The checks every responder verdict (accept or reject) makes before it
 * writes a RESP: a pending handshake, a payload that fits, and a RESP never
 * larger than its INIT (no amplification). Returns 0, -EINVAL, -EMSGSIZE or
 * -ENOBUFS. */
int ovl__hs_resp_check(const struct ovl_hs *hs, const uint8_t *app,
                       size_t app_len, size_t cap);

int ovl__hs_respond(struct ovl_hs *hs, uint8_t status, uint32_t sender,
                    const uint8_t e_sk[32], const uint8_t *app,
                    size_t app_len, uint8_t *out, size_t *out_len,
                    uint8_t send[32], uint8_t recv[32]);

/* Initiator: authenticates a RESP (macs checked by the caller) against
 * the handshake in @hs without modifying it unless it succeeds. */
int ovl__hs_initiator_handle_response(struct ovl_hs *hs,
                                      const struct ovl_identity *local,
                                      const uint8_t *msg, size_t len,
                                      uint8_t *status, uint32_t *sender,
                                      uint8_t *app, size_t *app_len,
                                      uint8_t send[32], uint8_t recv[32],
                                      enum ovl_drop *drop);

/* ---- ovl_session.c: what the endpoint dispatches ------------------------- */

int ovl__session_open_slot(struct ovl_session *s, int slot,
                           const struct ovl_datagram *in, uint64_t now,
                           uint8_t *out, size_t out_cap, struct ovl_rx *rx);
int ovl__session_handle_resp(struct ovl_session *s,
                             const struct ovl_datagram *in, uint64_t now,
                             uint8_t *out, size_t out_cap, struct ovl_rx *rx);
int ovl__session_handle_cookie(struct ovl_session *s,
                               const struct ovl_datagram *in, uint64_t now,
                               uint8_t *out, size_t out_cap,
                               struct ovl_rx *rx);

/* ---- small helpers ------------------------------------------------------ */

static inline uint64_t ovl__min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* How long ago @t was at @now; 0 if @t lies ahead (a caller whose clock
 * source jitters must not make fresh keys look 2^64 ns old). */
static inline uint64_t ovl__age(uint64_t now, uint64_t t)
{
    return now > t ? now - t : 0;
}

/* a + b, saturating at OVL_NEVER. */
static inline uint64_t ovl__add(uint64_t a, uint64_t b)
{
    return a > OVL_NEVER - b ? OVL_NEVER : a + b;
}

#endif /* OVL_INTERNAL_H */
