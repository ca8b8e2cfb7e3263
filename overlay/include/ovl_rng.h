/*
 * ovl_rng.h: the randomness hook of the overlay.
 *
 * Every random byte the overlay uses (identity seeds, ephemeral keys,
 * session indices, cookie secrets and nonces, request ids, timer jitter)
 * comes through one of these, so a simulated network of thousands of nodes
 * can run from a single deterministic seed. Production code leaves the hook
 * empty and gets libsodium's randombytes_buf.
 *
 * Thread: whatever the function itself allows; randombytes_buf is any.
 */
#ifndef OVL_RNG_H
#define OVL_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Fills @buf with @len random bytes. Must not fail. */
typedef void (*ovl_rng_fn)(void *data, uint8_t *buf, size_t len);

struct ovl_rng {
    ovl_rng_fn fn; /* NULL: libsodium's randombytes_buf */
    void *data;    /* passed to fn */
};

/* Fills @buf from @rng (NULL or an empty hook: randombytes_buf). */
void ovl_rng_bytes(const struct ovl_rng *rng, uint8_t *buf, size_t len);

/* A uniformly random value in [0, bound) from @rng; @bound > 0. */
uint32_t ovl_rng_uniform(const struct ovl_rng *rng, uint32_t bound);

/*
 * A deterministic generator for tests and simulations: ChaCha20 keystream
 * (libsodium's crypto_stream_chacha20) from a 32-byte seed. Set a hook with
 * { ovl_rng_seeded_fn, &state }. Not for production keys.
 */
struct ovl_rng_seeded {
    uint8_t key[32];
    uint64_t counter; /* 64-byte blocks used so far */
};

void ovl_rng_seeded_init(struct ovl_rng_seeded *s, const uint8_t seed[32]);
void ovl_rng_seeded_fn(void *data, uint8_t *buf, size_t len);

#endif /* OVL_RNG_H */
