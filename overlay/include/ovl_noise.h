/*
 * ovl_noise.h: the pieces of the Noise Protocol Framework that Chorus uses,
 * for exactly one protocol: Noise_IK_25519_ChaChaPoly_BLAKE2b (revision 34
 * of the specification, https://noiseprotocol.org/noise.html). This is the
 * low layer of ovl_secure.h; applications use that instead.
 *
 * Nothing here knows about the wire header, indices, macs or cookies: this
 * is the spec's SymmetricState/CipherState and the two IK messages, byte for
 * byte, so that it can be checked against the published test vectors
 * (tests/overlay/test_ovl_noise.c). ovl_handshake.c wraps it in the Chorus
 * message formats.
 *
 * Parameters (spec section 12):
 *   DH = 25519 (X25519, DHLEN 32), cipher = ChaChaPoly (ChaCha20-Poly1305
 *   IETF; nonce = 4 zero bytes || 64-bit little-endian n), hash = BLAKE2b
 *   (HASHLEN 64, BLOCKLEN 128). Because HASHLEN is 64, every cipher key
 *   taken from HKDF output is its first 32 bytes (spec 5.2).
 *
 * Thread: any; the state structs are owned by the caller.
 * Every struct here holds secrets: wipe with ovl_ik_wipe / sodium_memzero.
 */
#ifndef OVL_NOISE_H
#define OVL_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    OVL_HASH_LEN = 64,   /* BLAKE2b-512 */
    OVL_HASH_BLOCK = 128,
    OVL_DH_LEN = 32,
    OVL_AEAD_KEY_LEN = 32,
    OVL_AEAD_TAG_LEN = 16,
    OVL_IK_MSG1_OVERHEAD = OVL_DH_LEN + OVL_DH_LEN + 2 * OVL_AEAD_TAG_LEN,
    OVL_IK_MSG2_OVERHEAD = OVL_DH_LEN + OVL_AEAD_TAG_LEN,
};

#define OVL_NOISE_PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"

/* HMAC (RFC 2104) over BLAKE2b-512 with a 128-byte block, as the Noise spec
 * section 4.3 defines HMAC-HASH. The message is @in1 || @in2 (either may be
 * empty), which is what HKDF needs. @key_len may be anything. */
void ovl_hmac_blake2b(uint8_t out[OVL_HASH_LEN], const uint8_t *key,
                      size_t key_len, const uint8_t *in1, size_t len1,
                      const uint8_t *in2, size_t len2);

/* Noise's HKDF(chaining_key, input_key_material, num_outputs), spec 4.3:
 *   temp_key = HMAC(ck, ikm); out1 = HMAC(temp_key, 0x01);
 *   out2 = HMAC(temp_key, out1 || 0x02); out3 = HMAC(temp_key, out2 || 0x03)
 * @out3 may be NULL (two outputs). Outputs may not alias @ck. */
void ovl_hkdf(const uint8_t ck[OVL_HASH_LEN], const uint8_t *ikm,
              size_t ikm_len, uint8_t out1[OVL_HASH_LEN],
              uint8_t out2[OVL_HASH_LEN], uint8_t *out3);

/* ChaChaPoly ENCRYPT(k, n, ad, plaintext): writes @len + 16 bytes to @out.
 * @out may equal @in. Returns 0. */
int ovl_aead_seal(uint8_t *out, const uint8_t key[OVL_AEAD_KEY_LEN],
                  uint64_t n, const uint8_t *ad, size_t ad_len,
                  const uint8_t *in, size_t len);

/* ChaChaPoly DECRYPT: @len includes the tag; writes @len - 16 bytes.
 * Returns 0, or -EBADMSG when authentication fails (then @out is zeroed). */
int ovl_aead_open(uint8_t *out, const uint8_t key[OVL_AEAD_KEY_LEN],
                  uint64_t n, const uint8_t *ad, size_t ad_len,
                  const uint8_t *in, size_t len);

/* SymmetricState with its CipherState (spec 5.1, 5.2). */
struct ovl_noise_ss {
    uint8_t ck[OVL_HASH_LEN]; /* chaining key */
    uint8_t h[OVL_HASH_LEN];  /* handshake hash */
    uint8_t k[OVL_AEAD_KEY_LEN];
    uint64_t n;
    bool has_k;
};

/* InitializeSymmetric(protocol_name) then MixHash(prologue). */
void ovl_noise_init(struct ovl_noise_ss *ss, const char *protocol_name,
                    const uint8_t *prologue, size_t prologue_len);
void ovl_noise_mix_hash(struct ovl_noise_ss *ss, const uint8_t *data,
                        size_t len);
void ovl_noise_mix_key(struct ovl_noise_ss *ss, const uint8_t *ikm,
                       size_t len);
/* MixKey(DH(sk, pk)). Returns -EINVAL, leaving @ss unchanged, when the DH
 * result is all zero (pk of small order), which Chorus rejects. */
int ovl_noise_mix_dh(struct ovl_noise_ss *ss, const uint8_t sk[OVL_DH_LEN],
                     const uint8_t pk[OVL_DH_LEN]);
/* EncryptAndHash: writes @len (+16 when a key is set) bytes. */
void ovl_noise_encrypt_and_hash(struct ovl_noise_ss *ss, uint8_t *out,
                                const uint8_t *in, size_t len);
/* DecryptAndHash: @len includes the tag when a key is set. Returns 0 or
 * -EBADMSG (the state is then unusable: the caller abandons it). */
int ovl_noise_decrypt_and_hash(struct ovl_noise_ss *ss, uint8_t *out,
                               const uint8_t *in, size_t len);
/* Split(): the initiator sends with @k1 and receives with @k2. */
void ovl_noise_split(const struct ovl_noise_ss *ss,
                     uint8_t k1[OVL_AEAD_KEY_LEN],
                     uint8_t k2[OVL_AEAD_KEY_LEN]);

/* HandshakeState for IK. Pattern (spec 7.5):
 *     <- s
 *     ...
 *     -> e, es, s, ss
 *     <- e, ee, se                                                      */
struct ovl_ik {
    struct ovl_noise_ss ss;
    uint8_t e_sk[OVL_DH_LEN]; /* local ephemeral */
    uint8_t e_pk[OVL_DH_LEN];
    uint8_t re[OVL_DH_LEN];   /* remote ephemeral */
    uint8_t rs[OVL_DH_LEN];   /* remote static (initiator: set by init;
                                 responder: learnt from message 1) */
};

/* Initialize(): protocol name, prologue, then the pre-message "<- s":
 * MixHash(responder's static public key). The initiator passes the
 * responder's key and keeps it as rs; the responder passes its own. */
void ovl_ik_init(struct ovl_ik *ik, bool initiator, const uint8_t *prologue,
                 size_t prologue_len,
                 const uint8_t responder_static_pk[OVL_DH_LEN]);

/* Initiator, message 1. @e_sk is the ephemeral private key (random in
 * production, fixed in test vectors). Writes OVL_IK_MSG1_OVERHEAD + @len
 * bytes. Returns 0 or -EINVAL (a DH gave zero: bad remote key). */
int ovl_ik_write_msg1(struct ovl_ik *ik, const uint8_t e_sk[OVL_DH_LEN],
                      const uint8_t s_sk[OVL_DH_LEN],
                      const uint8_t s_pk[OVL_DH_LEN], const uint8_t *payload,
                      size_t len, uint8_t *out);

/* Responder, message 1 (@msg_len >= OVL_IK_MSG1_OVERHEAD); writes
 * @msg_len - OVL_IK_MSG1_OVERHEAD payload bytes and sets ik->rs.
 * Returns 0, -EINVAL (DH gave zero) or -EBADMSG (authentication). */
int ovl_ik_read_msg1(struct ovl_ik *ik, const uint8_t s_sk[OVL_DH_LEN],
                     const uint8_t *msg, size_t msg_len, uint8_t *payload);

/* Responder, message 2. Writes OVL_IK_MSG2_OVERHEAD + @len bytes. */
int ovl_ik_write_msg2(struct ovl_ik *ik, const uint8_t e_sk[OVL_DH_LEN],
                      const uint8_t *payload, size_t len, uint8_t *out);

/* Initiator, message 2 (@msg_len >= OVL_IK_MSG2_OVERHEAD). */
int ovl_ik_read_msg2(struct ovl_ik *ik, const uint8_t s_sk[OVL_DH_LEN],
                     const uint8_t *msg, size_t msg_len, uint8_t *payload);

/* Split() into (send, recv) keys for this side. */
void ovl_ik_split(const struct ovl_ik *ik, bool initiator,
                  uint8_t send[OVL_AEAD_KEY_LEN],
                  uint8_t recv[OVL_AEAD_KEY_LEN]);

void ovl_ik_wipe(struct ovl_ik *ik);

/* Keyed BLAKE2b with a 16-byte output: mac1 (32-byte key), mac2 (keyed
 * by the 16-byte cookie) and cookies (32-byte secret). */
void ovl_mac16(uint8_t out[16], const uint8_t *key, size_t key_len,
               const uint8_t *in, size_t len);

/* BLAKE2b-256(label || key): the mac1 key ("mac1----") and the cookie
 * encryption key ("cookie--"), as WireGuard derives them. */
void ovl_label_key(uint8_t out[32], const char label[8],
                   const uint8_t pk[32]);

#endif /* OVL_NOISE_H */
