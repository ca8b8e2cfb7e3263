/*
 * ovl_noise.c: Noise_IK_25519_ChaChaPoly_BLAKE2b, following the Noise
 * specification (revision 34) section by section. The comments name the
 * spec's functions, and each step of the two IK messages is labelled with
 * its token (e, es, s, ss, ee, se, payload) the way WireGuard's noise.c
 * labels its own.
 */
#include "ovl_noise.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

/* ---- Hash functions (spec 4.3) ----------------------------------------- */

static void hash2(uint8_t out[OVL_HASH_LEN], const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen)
{
    crypto_generichash_blake2b_state st;

    crypto_generichash_blake2b_init(&st, NULL, 0, OVL_HASH_LEN);
    crypto_generichash_blake2b_update(&st, a, alen);
    if (blen)
        crypto_generichash_blake2b_update(&st, b, blen);
    crypto_generichash_blake2b_final(&st, out, OVL_HASH_LEN);
    sodium_memzero(&st, sizeof(st));
}

void ovl_hmac_blake2b(uint8_t out[OVL_HASH_LEN], const uint8_t *key,
                      size_t key_len, const uint8_t *in1, size_t len1,
                      const uint8_t *in2, size_t len2)
{
    crypto_generichash_blake2b_state st;
    uint8_t k0[OVL_HASH_BLOCK] = {0};
    uint8_t pad[OVL_HASH_BLOCK];
    uint8_t inner[OVL_HASH_LEN];

    /* RFC 2104: keys longer than the block are hashed first; shorter ones
     * are zero-padded to the block (128 bytes for BLAKE2b). */
    if (key_len > OVL_HASH_BLOCK)
        hash2(k0, key, key_len, NULL, 0);
    else if (key_len)
        memcpy(k0, key, key_len);

    /* inner = H((K0 ^ ipad) || text) */
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = k0[i] ^ 0x36;
    crypto_generichash_blake2b_init(&st, NULL, 0, OVL_HASH_LEN);
    crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
    if (len1)
        crypto_generichash_blake2b_update(&st, in1, len1);
    if (len2)
        crypto_generichash_blake2b_update(&st, in2, len2);
    crypto_generichash_blake2b_final(&st, inner, sizeof(inner));

    /* out = H((K0 ^ opad) || inner) */
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = k0[i] ^ 0x5c;
    hash2(out, pad, sizeof(pad), inner, sizeof(inner));

    sodium_memzero(&st, sizeof(st));
    sodium_memzero(k0, sizeof(k0));
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
}

void ovl_hkdf(const uint8_t ck[OVL_HASH_LEN], const uint8_t *ikm,
              size_t ikm_len, uint8_t out1[OVL_HASH_LEN],
              uint8_t out2[OVL_HASH_LEN], uint8_t *out3)
{
    uint8_t temp_key[OVL_HASH_LEN];
    const uint8_t one = 0x01, two = 0x02, three = 0x03;

    ovl_hmac_blake2b(temp_key, ck, OVL_HASH_LEN, ikm, ikm_len, NULL, 0);
    ovl_hmac_blake2b(out1, temp_key, sizeof(temp_key), &one, 1, NULL, 0);
    ovl_hmac_blake2b(out2, temp_key, sizeof(temp_key), out1, OVL_HASH_LEN,
                     &two, 1);
    if (out3)
        ovl_hmac_blake2b(out3, temp_key, sizeof(temp_key), out2,
                         OVL_HASH_LEN, &three, 1);
    sodium_memzero(temp_key, sizeof(temp_key));
}

/* ---- Cipher functions (spec 4.2, 12.3) --------------------------------- */

/* ChaChaPoly: 96-bit nonce = 32 bits of zeros || little-endian 64-bit n. */
static void chachapoly_nonce(uint8_t nonce[12], uint64_t n)
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

int ovl_aead_seal(uint8_t *out, const uint8_t key[OVL_AEAD_KEY_LEN],
                  uint64_t n, const uint8_t *ad, size_t ad_len,
                  const uint8_t *in, size_t len)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

    chachapoly_nonce(nonce, n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, len, ad, ad_len,
                                              NULL, nonce, key);
    return 0;
}

int ovl_aead_open(uint8_t *out, const uint8_t key[OVL_AEAD_KEY_LEN],
                  uint64_t n, const uint8_t *ad, size_t ad_len,
                  const uint8_t *in, size_t len)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

    if (len < OVL_AEAD_TAG_LEN)
        return -EBADMSG;
    chachapoly_nonce(nonce, n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len,
                                                  ad, ad_len, nonce,
                                                  key) != 0) {
        sodium_memzero(out, len - OVL_AEAD_TAG_LEN);
        return -EBADMSG;
    }
    return 0;
}

/* ---- SymmetricState (spec 5.2) ----------------------------------------- */

void ovl_noise_init(struct ovl_noise_ss *ss, const char *protocol_name,
                    const uint8_t *prologue, size_t prologue_len)
{
    size_t name_len = strlen(protocol_name);

    /* InitializeSymmetric: h = name zero-padded to HASHLEN when it fits,
     * else HASH(name); ck = h; InitializeKey(empty). */
    memset(ss, 0, sizeof(*ss));
    if (name_len <= OVL_HASH_LEN)
        memcpy(ss->h, protocol_name, name_len);
    else
        hash2(ss->h, (const uint8_t *)protocol_name, name_len, NULL, 0);
    memcpy(ss->ck, ss->h, OVL_HASH_LEN);
    /* HandshakeState.Initialize: MixHash(prologue). */
    ovl_noise_mix_hash(ss, prologue, prologue_len);
}

void ovl_noise_mix_hash(struct ovl_noise_ss *ss, const uint8_t *data,
                        size_t len)
{
    hash2(ss->h, ss->h, OVL_HASH_LEN, data, len);
}

void ovl_noise_mix_key(struct ovl_noise_ss *ss, const uint8_t *ikm,
                       size_t len)
{
    uint8_t ck[OVL_HASH_LEN], temp_k[OVL_HASH_LEN];

    /* ck, temp_k = HKDF(ck, ikm, 2); HASHLEN 64: truncate temp_k to 32;
     * InitializeKey(temp_k), which also resets n. */
    ovl_hkdf(ss->ck, ikm, len, ck, temp_k, NULL);
    memcpy(ss->ck, ck, OVL_HASH_LEN);
    memcpy(ss->k, temp_k, OVL_AEAD_KEY_LEN);
    ss->n = 0;
    ss->has_k = true;
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(temp_k, sizeof(temp_k));
}

int ovl_noise_mix_dh(struct ovl_noise_ss *ss, const uint8_t sk[OVL_DH_LEN],
                     const uint8_t pk[OVL_DH_LEN])
{
    uint8_t dh[OVL_DH_LEN];
    int ret = 0;

    /* crypto_scalarmult fails when the result is all zero, i.e. @pk has
     * small order; the Noise spec (section 12.1) lets us reject that. */
    if (crypto_scalarmult(dh, sk, pk) != 0) {
        ret = -EINVAL;
        goto out;
    }
    ovl_noise_mix_key(ss, dh, sizeof(dh));
out:
    sodium_memzero(dh, sizeof(dh));
    return ret;
}

void ovl_noise_encrypt_and_hash(struct ovl_noise_ss *ss, uint8_t *out,
                                const uint8_t *in, size_t len)
{
    size_t out_len = len;

    /* EncryptWithAd(h, plaintext): a no-op copy while no key is set. */
    if (ss->has_k) {
        ovl_aead_seal(out, ss->k, ss->n, ss->h, OVL_HASH_LEN, in, len);
        ss->n++;
        out_len += OVL_AEAD_TAG_LEN;
    } else if (out != in) {
        memmove(out, in, len);
    }
    ovl_noise_mix_hash(ss, out, out_len);
}

int ovl_noise_decrypt_and_hash(struct ovl_noise_ss *ss, uint8_t *out,
                               const uint8_t *in, size_t len)
{
    uint8_t h_in[OVL_HASH_LEN];
    int ret = 0;

    /* MixHash(ciphertext) happens after decryption, so hash the input
     * first in case @out overlaps it. */
    hash2(h_in, ss->h, OVL_HASH_LEN, in, len);
    if (ss->has_k) {
        ret = ovl_aead_open(out, ss->k, ss->n, ss->h, OVL_HASH_LEN, in, len);
        if (ret)
            goto out;
        ss->n++;
    } else if (out != in) {
        memmove(out, in, len);
    }
    memcpy(ss->h, h_in, OVL_HASH_LEN);
out:
    sodium_memzero(h_in, sizeof(h_in));
    return ret;
}

void ovl_noise_split(const struct ovl_noise_ss *ss,
                     uint8_t k1[OVL_AEAD_KEY_LEN],
                     uint8_t k2[OVL_AEAD_KEY_LEN])
{
    uint8_t t1[OVL_HASH_LEN], t2[OVL_HASH_LEN];

    /* temp_k1, temp_k2 = HKDF(ck, zerolen, 2), truncated to 32 bytes. */
    ovl_hkdf(ss->ck, NULL, 0, t1, t2, NULL);
    memcpy(k1, t1, OVL_AEAD_KEY_LEN);
    memcpy(k2, t2, OVL_AEAD_KEY_LEN);
    sodium_memzero(t1, sizeof(t1));
    sodium_memzero(t2, sizeof(t2));
}

/* ---- HandshakeState for IK (spec 5.3, 7.5) ------------------------------ */

void ovl_ik_init(struct ovl_ik *ik, bool initiator, const uint8_t *prologue,
                 size_t prologue_len,
                 const uint8_t responder_static_pk[OVL_DH_LEN])
{
    memset(ik, 0, sizeof(*ik));
    ovl_noise_init(&ik->ss, OVL_NOISE_PROTOCOL_NAME, prologue, prologue_len);
    /* Pre-message "<- s": both sides hash the responder's static key. */
    ovl_noise_mix_hash(&ik->ss, responder_static_pk, OVL_DH_LEN);
    if (initiator)
        memcpy(ik->rs, responder_static_pk, OVL_DH_LEN);
}

int ovl_ik_write_msg1(struct ovl_ik *ik, const uint8_t e_sk[OVL_DH_LEN],
                      const uint8_t s_sk[OVL_DH_LEN],
                      const uint8_t s_pk[OVL_DH_LEN], const uint8_t *payload,
                      size_t len, uint8_t *out)
{
    int ret;

    /* e */
    memcpy(ik->e_sk, e_sk, OVL_DH_LEN);
    crypto_scalarmult_base(ik->e_pk, ik->e_sk);
    memcpy(out, ik->e_pk, OVL_DH_LEN);
    ovl_noise_mix_hash(&ik->ss, ik->e_pk, OVL_DH_LEN);
    out += OVL_DH_LEN;
    /* es */
    ret = ovl_noise_mix_dh(&ik->ss, ik->e_sk, ik->rs);
    if (ret)
        return ret;
    /* s */
    ovl_noise_encrypt_and_hash(&ik->ss, out, s_pk, OVL_DH_LEN);
    out += OVL_DH_LEN + OVL_AEAD_TAG_LEN;
    /* ss */
    ret = ovl_noise_mix_dh(&ik->ss, s_sk, ik->rs);
    if (ret)
        return ret;
    /* payload */
    ovl_noise_encrypt_and_hash(&ik->ss, out, payload, len);
    return 0;
}

int ovl_ik_read_msg1(struct ovl_ik *ik, const uint8_t s_sk[OVL_DH_LEN],
                     const uint8_t *msg, size_t msg_len, uint8_t *payload)
{
    int ret;

    if (msg_len < OVL_IK_MSG1_OVERHEAD)
        return -EBADMSG;
    /* e */
    memcpy(ik->re, msg, OVL_DH_LEN);
    ovl_noise_mix_hash(&ik->ss, ik->re, OVL_DH_LEN);
    msg += OVL_DH_LEN;
    /* es */
    ret = ovl_noise_mix_dh(&ik->ss, s_sk, ik->re);
    if (ret)
        return ret;
    /* s */
    ret = ovl_noise_decrypt_and_hash(&ik->ss, ik->rs, msg,
                                     OVL_DH_LEN + OVL_AEAD_TAG_LEN);
    if (ret)
        return ret;
    msg += OVL_DH_LEN + OVL_AEAD_TAG_LEN;
    /* ss */
    ret = ovl_noise_mix_dh(&ik->ss, s_sk, ik->rs);
    if (ret)
        return ret;
    /* payload */
    return ovl_noise_decrypt_and_hash(&ik->ss, payload, msg,
                                      msg_len - (OVL_DH_LEN + OVL_DH_LEN +
                                                 OVL_AEAD_TAG_LEN));
}

int ovl_ik_write_msg2(struct ovl_ik *ik, const uint8_t e_sk[OVL_DH_LEN],
                      const uint8_t *payload, size_t len, uint8_t *out)
{
    int ret;

    /* e */
    memcpy(ik->e_sk, e_sk, OVL_DH_LEN);
    crypto_scalarmult_base(ik->e_pk, ik->e_sk);
    memcpy(out, ik->e_pk, OVL_DH_LEN);
    ovl_noise_mix_hash(&ik->ss, ik->e_pk, OVL_DH_LEN);
    out += OVL_DH_LEN;
    /* ee */
    ret = ovl_noise_mix_dh(&ik->ss, ik->e_sk, ik->re);
    if (ret)
        return ret;
    /* se: DH(initiator's s, responder's e), computed here as DH(e, rs) */
    ret = ovl_noise_mix_dh(&ik->ss, ik->e_sk, ik->rs);
    if (ret)
        return ret;
    /* payload */
    ovl_noise_encrypt_and_hash(&ik->ss, out, payload, len);
    return 0;
}

int ovl_ik_read_msg2(struct ovl_ik *ik, const uint8_t s_sk[OVL_DH_LEN],
                     const uint8_t *msg, size_t msg_len, uint8_t *payload)
{
    int ret;

    if (msg_len < OVL_IK_MSG2_OVERHEAD)
        return -EBADMSG;
    /* e */
    memcpy(ik->re, msg, OVL_DH_LEN);
    ovl_noise_mix_hash(&ik->ss, ik->re, OVL_DH_LEN);
    msg += OVL_DH_LEN;
    /* ee */
    ret = ovl_noise_mix_dh(&ik->ss, ik->e_sk, ik->re);
    if (ret)
        return ret;
    /* se: computed here as DH(s, re) */
    ret = ovl_noise_mix_dh(&ik->ss, s_sk, ik->re);
    if (ret)
        return ret;
    /* payload */
    return ovl_noise_decrypt_and_hash(&ik->ss, payload, msg,
                                      msg_len - OVL_DH_LEN);
}

void ovl_ik_split(const struct ovl_ik *ik, bool initiator,
                  uint8_t send[OVL_AEAD_KEY_LEN],
                  uint8_t recv[OVL_AEAD_KEY_LEN])
{
    if (initiator)
        ovl_noise_split(&ik->ss, send, recv);
    else
        ovl_noise_split(&ik->ss, recv, send);
}

void ovl_ik_wipe(struct ovl_ik *ik)
{
    sodium_memzero(ik, sizeof(*ik));
}

/* ---- WireGuard-style MACs ---------------------------------------------- */

void ovl_mac16(uint8_t out[16], const uint8_t *key, size_t key_len,
               const uint8_t *in, size_t len)
{
    crypto_generichash_blake2b(out, 16, in, len, key, key_len);
}

void ovl_label_key(uint8_t out[32], const char label[8],
                   const uint8_t pk[32])
{
    crypto_generichash_blake2b_state st;

    crypto_generichash_blake2b_init(&st, NULL, 0, 32);
    crypto_generichash_blake2b_update(&st, (const uint8_t *)label, 8);
    crypto_generichash_blake2b_update(&st, pk, 32);
    crypto_generichash_blake2b_final(&st, out, 32);
}
