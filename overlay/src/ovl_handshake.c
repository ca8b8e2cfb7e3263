/*
 * ovl_handshake.c: the INIT and RESP messages, i.e. Noise IK (ovl_noise.c)
 * wrapped in Chorus's header, indices, payload structure and macs.
 *
 *   INIT = hdr | sender | e | AEAD(s) | AEAD(init_plain | app) | mac1 | mac2
 *   RESP = hdr | receiver | e | AEAD(resp_plain | app)          | mac1 | mac2
 *
 * The Noise prologue is OVL_PROLOGUE followed by the INIT's first 8 bytes,
 * so the header, version and sender index are bound into the handshake
 * hash (WireGuard leaves its sender index unauthenticated; nothing is lost
 * by binding it). The responder's own index travels inside the encrypted
 * RESP payload; the RESP's receiver index only routes it.
 */
#include "ovl_internal.h"

#include <sodium.h>

enum {
    HEAD8 = 8, /* header + one index */
    MACS = (int)sizeof(struct ovl_wire_macs),
};

void ovl__tai64n(uint8_t out[OVL_TAI64N_LEN], uint64_t unix_ns)
{
    uint64_t sec = unix_ns / OVL_NS_PER_SEC + 0x400000000000000aull;
    uint32_t nsec = (uint32_t)(unix_ns % OVL_NS_PER_SEC);

    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(sec >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        out[8 + i] = (uint8_t)(nsec >> (24 - 8 * i));
}

static void prologue(uint8_t p[OVL_PROLOGUE_LEN], const uint8_t *head8)
{
    memcpy(p, OVL_PROLOGUE, sizeof(OVL_PROLOGUE) - 1);
    memcpy(p + sizeof(OVL_PROLOGUE) - 1, head8, HEAD8);
}

int ovl__hs_initiator_start(struct ovl_hs *hs, const struct ovl_init_params *p,
                            uint8_t *out, size_t *out_len)
{
    struct ovl_wire_init_head *head = (struct ovl_wire_init_head *)out;
    struct ovl_wire_init_plain *plain;
    uint8_t pro[OVL_PROLOGUE_LEN];
    size_t len = OVL_INIT_MIN + p->app_len;
    int ret;

    memset(hs, 0, sizeof(*hs));
    ovl_wire_put_hdr(out, OVL_MSG_INIT);
    ovl_store_le32(head->sender_le, p->sender);
    prologue(pro, out);
    ovl_ik_init(&hs->ik, true, pro, sizeof(pro), p->remote_static);

    /* The payload is assembled where its ciphertext goes and encrypted in
     * place: init_plain || app. */
    plain = (struct ovl_wire_init_plain *)(out + sizeof(*head));
    memcpy(plain->tai64n, p->tai64n, OVL_TAI64N_LEN);
    memcpy(plain->identity, p->local->ed_pk, OVL_ED_PK_LEN);
    plain->flags = p->flags;
    memset(plain->reserved, 0, sizeof(plain->reserved));
    if (p->app_len)
        memmove(plain + 1, p->app, p->app_len);

    /* -> e, es, s, ss, payload */
    ret = ovl_ik_write_msg1(&hs->ik, p->e_sk, p->local->x_sk, p->local->x_pk,
                            (const uint8_t *)plain,
                            sizeof(*plain) + p->app_len, out + HEAD8);
    if (ret) {
        ovl_ik_wipe(&hs->ik);
        return ret;
    }
    ovl__macs_write(out, len, p->remote_mac1_key, p->cookie);
    hs->state = OVL_HS_INIT_SENT;
    hs->flags = p->flags;
    hs->local_index = p->sender;
    *out_len = len;
    return 0;
}

int ovl__hs_responder_handle_init(struct ovl_hs *hs,
                                  const struct ovl_identity *local,
                                  const uint8_t *msg, size_t len,
                                  uint8_t tai64n[OVL_TAI64N_LEN],
                                  uint8_t *app, size_t *app_len,
                                  enum ovl_drop *drop)
{
    uint8_t plain_buf[OVL_INIT_PLAIN_MAX];
    const struct ovl_wire_init_plain *plain =
        (const struct ovl_wire_init_plain *)plain_buf;
    uint8_t pro[OVL_PROLOGUE_LEN], x[OVL_X_LEN];
    size_t noise_len, plain_len;
    int ret;

    memset(hs, 0, sizeof(*hs));
    if (len < OVL_INIT_MIN || len > OVL_INIT_MAX) {
        *drop = len < OVL_INIT_MIN ? OVL_DROP_TOO_SHORT : OVL_DROP_TOO_LONG;
        return -EBADMSG;
    }
    noise_len = len - HEAD8 - MACS;
    plain_len = noise_len - OVL_IK_MSG1_OVERHEAD;

    prologue(pro, msg);
    ovl_ik_init(&hs->ik, false, pro, sizeof(pro), local->x_pk);
    /* <- e, es, s, ss, payload */
    ret = ovl_ik_read_msg1(&hs->ik, local->x_sk, msg + HEAD8, noise_len,
                           plain_buf);
    if (ret) {
        *drop = ret == -EINVAL ? OVL_DROP_BAD_KEY : OVL_DROP_DECRYPT;
        goto fail;
    }
    if ((plain->flags & ~OVL_INIT_FLAGS_KNOWN) != 0 ||
        !sodium_is_zero(plain->reserved, sizeof(plain->reserved))) {
        *drop = OVL_DROP_BAD_HEADER;
        goto fail;
    }
    /* The claimed Ed25519 identity must be the one whose X25519 form the
     * handshake just authenticated (by the ss DH). */
    if (ovl_ed_to_x25519(x, plain->identity) != 0 ||
        sodium_memcmp(x, hs->ik.rs, OVL_X_LEN) != 0) {
        *drop = OVL_DROP_IDENTITY;
        goto fail;
    }
    hs->state = OVL_HS_PENDING;
    hs->flags = plain->flags;
    hs->remote_index = ovl_load_le32(msg + 4);
    memcpy(hs->remote_identity, plain->identity, OVL_ED_PK_LEN);
    hs->init_len = (uint16_t)len;
    memcpy(tai64n, plain->tai64n, OVL_TAI64N_LEN);
    *app_len = plain_len - sizeof(*plain);
    memcpy(app, plain_buf + sizeof(*plain), *app_len);
    sodium_memzero(plain_buf, sizeof(plain_buf));
    return 0;

fail:
    sodium_memzero(plain_buf, sizeof(plain_buf));
    ovl_ik_wipe(&hs->ik);
    memset(hs, 0, sizeof(*hs));
    return -EBADMSG;
}

int ovl__hs_respond(struct ovl_hs *hs, uint8_t status, uint32_t sender,
                    const uint8_t e_sk[32], const uint8_t *app,
                    size_t app_len, uint8_t *out, size_t *out_len,
                    uint8_t send[32], uint8_t recv[32])
{
    struct ovl_wire_resp_head *head = (struct ovl_wire_resp_head *)out;
    struct ovl_wire_resp_plain *plain =
        (struct ovl_wire_resp_plain *)(out + sizeof(*head));
    uint8_t mac1_key[32];
    size_t len = OVL_RESP_MIN + app_len;
    int ret;

    ovl_wire_put_hdr(out, OVL_MSG_RESP);
    ovl_store_le32(head->receiver_le, hs->remote_index);
    /* Payload in place: resp_plain || app. */
    if (app_len)
        memmove(plain + 1, app, app_len);
    plain->status = status;
    memset(plain->reserved, 0, sizeof(plain->reserved));
    ovl_store_le32(plain->sender_le, sender);

    /* <- e, ee, se, payload */
    ret = ovl_ik_write_msg2(&hs->ik, e_sk, (const uint8_t *)plain,
                            sizeof(*plain) + app_len, out + HEAD8);
    if (ret)
        return ret;
    /* mac1 keyed by the initiator's static key, as WireGuard does. */
    ovl_label_key(mac1_key, "mac1----", hs->ik.rs);
    ovl__macs_write(out, len, mac1_key, NULL);
    if (send && recv)
        ovl_ik_split(&hs->ik, false, send, recv);
    *out_len = len;
    return 0;
}

int ovl__hs_initiator_handle_response(struct ovl_hs *hs,
                                      const struct ovl_identity *local,
                                      const uint8_t *msg, size_t len,
                                      uint8_t *status, uint32_t *sender,
                                      uint8_t *app, size_t *app_len,
                                      uint8_t send[32], uint8_t recv[32],
                                      enum ovl_drop *drop)
{
    uint8_t plain_buf[OVL_RESP_PLAIN_MAX];
    const struct ovl_wire_resp_plain *plain =
        (const struct ovl_wire_resp_plain *)plain_buf;
    struct ovl_ik ik;
    size_t noise_len, plain_len;
    int ret = -EBADMSG;

    if (len < OVL_RESP_MIN || len > OVL_RESP_MAX) {
        *drop = len < OVL_RESP_MIN ? OVL_DROP_TOO_SHORT : OVL_DROP_TOO_LONG;
        return -EBADMSG;
    }
    noise_len = len - HEAD8 - MACS;
    plain_len = noise_len - OVL_IK_MSG2_OVERHEAD;

    /* Work on a copy: a forged RESP (mac1 keys are public) must not
     * disturb the handshake that the real RESP will complete. */
    ik = hs->ik;
    ret = ovl_ik_read_msg2(&ik, local->x_sk, msg + HEAD8, noise_len,
                           plain_buf);
    if (ret) {
        *drop = ret == -EINVAL ? OVL_DROP_BAD_KEY : OVL_DROP_DECRYPT;
        ret = -EBADMSG;
        goto out;
    }
    ret = -EBADMSG;
    *sender = ovl_load_le32(plain->sender_le);
    if (!sodium_is_zero(plain->reserved, sizeof(plain->reserved)) ||
        (plain->status == OVL_RESP_ACCEPT && *sender == 0) ||
        (plain->status == OVL_RESP_REJECT && *sender != 0) ||
        plain->status > OVL_RESP_REJECT) {
        *drop = OVL_DROP_BAD_HEADER;
        goto out;
    }
    *status = plain->status;
    *app_len = plain_len - sizeof(*plain);
    memcpy(app, plain_buf + sizeof(*plain), *app_len);
    if (plain->status == OVL_RESP_ACCEPT)
        ovl_ik_split(&ik, true, send, recv);
    hs->ik = ik;
    ret = 0;
out:
    ovl_ik_wipe(&ik);
    sodium_memzero(plain_buf, sizeof(plain_buf));
    return ret;
}
