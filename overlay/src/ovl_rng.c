/*
 * ovl_rng.c: the randomness hook and a seeded generator for simulations.
 */
#include "ovl_rng.h"

#include <sodium.h>
#include <string.h>

void ovl_rng_bytes(const struct ovl_rng *rng, uint8_t *buf, size_t len)
{
    if (len == 0)
        return;
    if (rng == NULL || rng->fn == NULL)
        randombytes_buf(buf, len);
    else
        rng->fn(rng->data, buf, len);
}

uint32_t ovl_rng_uniform(const struct ovl_rng *rng, uint32_t bound)
{
    /* Rejection sampling, as randombytes_uniform: values below
     * 2^32 mod bound would make the low results more likely. */
    uint32_t min = (uint32_t)(-bound) % bound;
    uint32_t r;
    uint8_t b[4];

    do {
        ovl_rng_bytes(rng, b, sizeof(b));
        r = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
            (uint32_t)b[3] << 24;
    } while (r < min);
    return r % bound;
}

void ovl_rng_seeded_init(struct ovl_rng_seeded *s, const uint8_t seed[32])
{
    memcpy(s->key, seed, sizeof(s->key));
    s->counter = 0;
}

/* Each call starts on a fresh 64-byte block, so the output depends only on
 * the sequence of request lengths, which is what determinism needs. */
void ovl_rng_seeded_fn(void *data, uint8_t *buf, size_t len)
{
    struct ovl_rng_seeded *s = data;
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};

    memset(buf, 0, len);
    crypto_stream_chacha20_xor_ic(buf, buf, len, nonce, s->counter, s->key);
    s->counter += (len + 63) / 64;
}
