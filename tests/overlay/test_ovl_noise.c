/*
 * test_ovl_noise.c: known-answer tests for the crypto core (ovl_noise.h).
 *
 * Where the expected values come from:
 *  - HMAC-BLAKE2b and Noise HKDF: computed with CPython 3.11's hmac and
 *    hashlib modules (hmac.new(key, msg, hashlib.blake2b), whose block size
 *    is 128 and digest 64), an implementation independent of ours; the
 *    inputs are RFC 4231's HMAC test inputs plus a 64-byte key (the size of
 *    a Noise chaining key) and a message longer than one block.
 *  - Noise_IK_25519_ChaChaPoly_BLAKE2b: the official vector of the
 *    noise-c project, tests/vector/noise-c-basic.txt, entry
 *    "Noise_IK_25519_ChaChaPoly_BLAKE2b" (rweather/noise-c at commit
 *    ec5de2ca65b093234c82c45f47b46d19bfa912e4). noise-c's vectors are
 *    cross-checked against cacophony's; the same values appear in
 *    c-toxcore's crypto tests. Every byte of both handshake messages, the
 *    first four transport messages and the final handshake hash must match.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "ovl_noise.h"
#include "ovl_test_util.h"

static void init_sodium(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(noise, .init = init_sodium);

Test(noise, hmac_blake2b_known_answers)
{
    /* Keys given as (byte, count); messages as text. */
    static const struct {
        uint8_t key_byte;
        size_t key_len;
        const char *msg;
        const char *mac;
    } cases[] = {
        {0x0b, 20, "Hi There",
         "358a6a184924894fc34bee5680eedf57d84a37bb38832f288e3b27dc63a98cc8"
         "c91e76da476b508bc6b2d408a248857452906e4a20b48c6b4b55d2df0fe1dd24"},
        {0xaa, 131, "Test Using Larger Than Block-Size Key - Hash Key First",
         "a54b2943b2a20227d41ca46c0945af09bc1faefb2f49894c23aebc557fb79c48"
         "89dca74408dc865086667aedee4a3185c53a49c80b814c4c5813ea0c8b38a8f8"},
    };
    uint8_t key[256], mac[64], want[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(key, cases[i].key_byte, cases[i].key_len);
        ovl_hmac_blake2b(mac, key, cases[i].key_len,
                         (const uint8_t *)cases[i].msg, strlen(cases[i].msg),
                         NULL, 0);
        unhex(want, sizeof(want), cases[i].mac);
        cr_expect_arr_eq(mac, want, 64, "case %zu", i);
    }

    /* "Jefe", split across the two message parts to test the seam. */
    ovl_hmac_blake2b(mac, (const uint8_t *)"Jefe", 4,
                     (const uint8_t *)"what do ya want ", 16,
                     (const uint8_t *)"for nothing?", 12);
    unhex(want, sizeof(want),
          "6ff884f8ddc2a6586b3c98a4cd6ebdf14ec10204b6710073eb5865ade37a2643"
          "b8807c1335d107ecdb9ffeaeb6828c4625ba172c66379efcd222c2de11727ab4");
    cr_expect_arr_eq(mac, want, 64);

    /* 64-byte key 00..3f, empty message. */
    for (int i = 0; i < 64; i++)
        key[i] = (uint8_t)i;
    ovl_hmac_blake2b(mac, key, 64, NULL, 0, NULL, 0);
    unhex(want, sizeof(want),
          "ea1896ab7c8319a824482f757c038b70089765501b1f8bdb78153d195915bd33"
          "0bde7a8c0fb6dbf3de09277662ba661fde80017dc277309eedfe05bdf5b27e18");
    cr_expect_arr_eq(mac, want, 64);

    /* Key exactly one block (00..7f), message 00..c7 (over one block). */
    {
        uint8_t msg[200];
        for (int i = 0; i < 128; i++)
            key[i] = (uint8_t)i;
        for (int i = 0; i < 200; i++)
            msg[i] = (uint8_t)i;
        ovl_hmac_blake2b(mac, key, 128, msg, 200, NULL, 0);
        unhex(want, sizeof(want),
              "0af9a9a9158dfa7ca11f6cd9091694e8cc1c613f34360fbc943964a4c8946448"
              "4ee357ebbc880fe730f6def72dc04a44c63634a4fe748d7149c5e3526e55f84c");
        cr_expect_arr_eq(mac, want, 64);
    }
}

Test(noise, hkdf_three_outputs)
{
    uint8_t ck[64], ikm[32], o1[64], o2[64], o3[64], want[64];

    for (int i = 0; i < 64; i++)
        ck[i] = (uint8_t)i;
    for (int i = 0; i < 32; i++)
        ikm[i] = (uint8_t)i;
    ovl_hkdf(ck, ikm, sizeof(ikm), o1, o2, o3);
    unhex(want, 64,
          "b257cf2863e7aa7f84d41d31e58df6dfb1e0a6cf3172192cc35eba2625a21975"
          "db4475b2ef89316383acac6b2ac7cf03f7583e0ff20a64fb208fa5b1199f835f");
    cr_expect_arr_eq(o1, want, 64);
    unhex(want, 64,
          "4f4d712feaff914e80db4d0d400a46056854134b5001018c4f1fe19bb477053c"
          "5a9b92f8c937b1328c0ae7e51895b8d68068bc84d59436cc3b75de5a2d6d0630");
    cr_expect_arr_eq(o2, want, 64);
    unhex(want, 64,
          "c3e03a921f0f492329fe003e995b982fdd8c0596cc3575e01c2f24234e05e477"
          "8d233726d60ffe48a7d9ef235a6ff5fac555bafcfdd1272c4763ded2e01c0c3f");
    cr_expect_arr_eq(o3, want, 64);
}

/* The noise-c vector. */
static const char *const V_PROLOGUE = "50726f6c6f677565313233";
static const char *const V_INIT_STATIC =
    "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
static const char *const V_INIT_EPHEMERAL =
    "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
static const char *const V_INIT_REMOTE_STATIC =
    "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62";
static const char *const V_RESP_STATIC =
    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
static const char *const V_RESP_EPHEMERAL =
    "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
static const struct {
    const char *payload;
    const char *ciphertext;
} V_MSG[] = {
    {"4c756477696720766f6e204d69736573",
     "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
     "ba83a447b38c83e327ad936929812f624884847b7831e95e197b2f797088efdd"
     "232fe541af156ec6d0657602902a8c3ee64e470f4b6fcd9298ce0b56fe20f86e"
     "60d9d933ec6e103ffb09e6001d6abb64"},
    {"4d757272617920526f746862617264",
     "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
     "9f069b267a06b3de3ecb1043bcb09807c6cd101f3826192a65f11ef3fe4317"},
    {"462e20412e20486179656b",
     "cd54383060e7a28434cca27fb1cc524cfbabeb18181589df219d07"},
    {"4361726c204d656e676572",
     "a856d3bf0246bfc476c655009cd1ed677b8dcc5b349ae8ef2a05f2"},
    {"4a65616e2d426170746973746520536179",
     "49063084b2c51f098337cb8a13739ac848f907e67cfb2cc8a8b60586467aa02fc7"},
    {"457567656e2042f6686d20766f6e2042617765726b",
     "8b9709d23b47e4639df7678d7a21741eba4ef1e9c60383001c7435549c20f9d5"
     "6f30e935d3"},
};
static const char *const V_HANDSHAKE_HASH =
    "00e51d2aac81a9b8ebe441d6af3e1c8efc0f030cc608332edcb42588ff6a0ce2"
    "6415ddc106e95277a5e6d54132f1e5245976b89caf96d262f1fe5a7f0c55c078";

Test(noise, ik_25519_chachapoly_blake2b_vector)
{
    uint8_t prologue[32], is[32], ie[32], irs[32], rs[32], re[32];
    uint8_t is_pk[32], rs_pk[32], h[64];
    uint8_t payload[64], want[256], msg[256], got[256];
    uint8_t i_send[32], i_recv[32], r_send[32], r_recv[32];
    struct ovl_ik ini, res;
    size_t plen, clen, prl;

    prl = unhex(prologue, sizeof(prologue), V_PROLOGUE);
    unhex(is, 32, V_INIT_STATIC);
    unhex(ie, 32, V_INIT_EPHEMERAL);
    unhex(irs, 32, V_INIT_REMOTE_STATIC);
    unhex(rs, 32, V_RESP_STATIC);
    unhex(re, 32, V_RESP_EPHEMERAL);
    crypto_scalarmult_base(is_pk, is);
    crypto_scalarmult_base(rs_pk, rs);
    cr_assert_arr_eq(rs_pk, irs, 32, "vector's responder key is consistent");

    ovl_ik_init(&ini, true, prologue, prl, irs);
    ovl_ik_init(&res, false, prologue, prl, rs_pk);

    /* -> e, es, s, ss */
    plen = unhex(payload, sizeof(payload), V_MSG[0].payload);
    clen = unhex(want, sizeof(want), V_MSG[0].ciphertext);
    cr_assert_eq(clen, plen + OVL_IK_MSG1_OVERHEAD);
    cr_assert_eq(ovl_ik_write_msg1(&ini, ie, is, is_pk, payload, plen, msg), 0);
    cr_expect_arr_eq(msg, want, clen, "message 1 bytes");
    cr_assert_eq(ovl_ik_read_msg1(&res, rs, msg, clen, got), 0);
    cr_expect_arr_eq(got, payload, plen);
    cr_expect_arr_eq(res.rs, is_pk, 32, "responder learnt the initiator");

    /* <- e, ee, se */
    plen = unhex(payload, sizeof(payload), V_MSG[1].payload);
    clen = unhex(want, sizeof(want), V_MSG[1].ciphertext);
    cr_assert_eq(clen, plen + OVL_IK_MSG2_OVERHEAD);
    cr_assert_eq(ovl_ik_write_msg2(&res, re, payload, plen, msg), 0);
    cr_expect_arr_eq(msg, want, clen, "message 2 bytes");
    cr_assert_eq(ovl_ik_read_msg2(&ini, is, msg, clen, got), 0);
    cr_expect_arr_eq(got, payload, plen);

    unhex(h, 64, V_HANDSHAKE_HASH);
    cr_expect_arr_eq(ini.ss.h, h, 64, "initiator handshake hash");
    cr_expect_arr_eq(res.ss.h, h, 64, "responder handshake hash");

    /* Transport: messages alternate initiator, responder, ...; each side's
     * nonce counts its own messages; empty associated data. */
    ovl_ik_split(&ini, true, i_send, i_recv);
    ovl_ik_split(&res, false, r_send, r_recv);
    cr_expect_arr_eq(i_send, r_recv, 32);
    cr_expect_arr_eq(i_recv, r_send, 32);
    for (int m = 2; m < 6; m++) {
        bool from_initiator = (m % 2) == 0;
        uint64_t n = (uint64_t)(m - 2) / 2;
        plen = unhex(payload, sizeof(payload), V_MSG[m].payload);
        clen = unhex(want, sizeof(want), V_MSG[m].ciphertext);
        ovl_aead_seal(msg, from_initiator ? i_send : r_send, n, NULL, 0,
                      payload, plen);
        cr_expect_arr_eq(msg, want, clen, "transport message %d", m);
        cr_expect_eq(ovl_aead_open(got, from_initiator ? r_recv : i_recv, n,
                                   NULL, 0, msg, clen),
                     0);
        cr_expect_arr_eq(got, payload, plen);
    }
    ovl_ik_wipe(&ini);
    ovl_ik_wipe(&res);
}

Test(noise, ik_rejects_tampering_and_wrong_keys)
{
    uint8_t prologue[] = "p", is[32], is_pk[32], rs[32], rs_pk[32], other[32];
    uint8_t other_pk[32], e[32], msg[256], got[256];
    struct ovl_ik ini, res;
    size_t len = OVL_IK_MSG1_OVERHEAD + 5;

    randombytes_buf(is, 32);
    randombytes_buf(rs, 32);
    randombytes_buf(other, 32);
    randombytes_buf(e, 32);
    crypto_scalarmult_base(is_pk, is);
    crypto_scalarmult_base(rs_pk, rs);
    crypto_scalarmult_base(other_pk, other);

    /* Every single-bit flip of message 1 fails authentication. */
    ovl_ik_init(&ini, true, prologue, 1, rs_pk);
    cr_assert_eq(ovl_ik_write_msg1(&ini, e, is, is_pk,
                                   (const uint8_t *)"hello", 5, msg), 0);
    for (size_t i = 0; i < len; i++) {
        msg[i] ^= 0x01;
        ovl_ik_init(&res, false, prologue, 1, rs_pk);
        cr_expect_neq(ovl_ik_read_msg1(&res, rs, msg, len, got), 0,
                      "flip at %zu accepted", i);
        msg[i] ^= 0x01;
    }
    /* The wrong responder cannot read it. */
    ovl_ik_init(&res, false, prologue, 1, other_pk);
    cr_expect_neq(ovl_ik_read_msg1(&res, other, msg, len, got), 0);
    /* A different prologue fails. */
    ovl_ik_init(&res, false, (const uint8_t *)"q", 1, rs_pk);
    cr_expect_neq(ovl_ik_read_msg1(&res, rs, msg, len, got), 0);
    /* The right one can. */
    ovl_ik_init(&res, false, prologue, 1, rs_pk);
    cr_expect_eq(ovl_ik_read_msg1(&res, rs, msg, len, got), 0);
    cr_expect_arr_eq(got, "hello", 5);

    /* A small-order ephemeral (the all-zero point) is refused as a key. */
    memset(msg, 0, OVL_DH_LEN);
    ovl_ik_init(&res, false, prologue, 1, rs_pk);
    cr_expect_eq(ovl_ik_read_msg1(&res, rs, msg, len, got), -EINVAL);
}
