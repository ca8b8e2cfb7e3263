/*
 * ovl_identity.h: a node's long-term identity.
 *
 * Every Chorus node (bridge, client, supernode) has one Ed25519 keypair.
 *  - The Ed25519 public key is the node's identity; the overlay signs its
 *    records with the secret key.
 *  - The node id, BLAKE2b-256 of the Ed25519 public key, is the node's
 *    address in the DHT.
 *  - The X25519 static key of the Noise handshake is derived from the same
 *    keypair (crypto_sign_ed25519_{pk,sk}_to_curve25519), so one key file
 *    serves both signing and key agreement.
 *
 * Key file: exactly OVL_IDENTITY_FILE_LEN bytes,
 *     "CHORUS-ED25519v1" (16 bytes) || seed (32) || Ed25519 public key (32)
 * created on first run with mode 0600 by writing a temporary file in the
 * same directory, fsync, then an atomic no-clobber rename, and fsync of the
 * directory. A file of another size or with a bad magic, a public key that
 * does not match the seed, group/other permission bits, an owner other than
 * the current user, or something other than a regular file is refused.
 *
 * Thread: any; functions touch only their arguments (and the file).
 */
#ifndef OVL_IDENTITY_H
#define OVL_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_rng.h"

enum {
    OVL_SEED_LEN = 32,
    OVL_ED_PK_LEN = 32,
    OVL_ED_SK_LEN = 64,          /* libsodium's seed || public key form */
    OVL_X_LEN = 32,              /* X25519 keys */
    OVL_NODE_ID_LEN = 32,
    OVL_IDENTITY_MAGIC_LEN = 16,
    OVL_IDENTITY_FILE_LEN = OVL_IDENTITY_MAGIC_LEN + OVL_SEED_LEN +
                            OVL_ED_PK_LEN, /* 80 */
    OVL_PK_TEXT_LEN = 44,        /* 43 base64url characters + NUL */
    OVL_NODE_ID_HEX_LEN = 65,    /* 64 hex digits + NUL */
};

#define OVL_IDENTITY_MAGIC "CHORUS-ED25519v1"

struct ovl_identity {
    uint8_t ed_pk[OVL_ED_PK_LEN];   /* public: identity */
    uint8_t ed_sk[OVL_ED_SK_LEN];   /* secret: signing key */
    uint8_t x_pk[OVL_X_LEN];        /* public: Noise static key */
    uint8_t x_sk[OVL_X_LEN];        /* secret: Noise static key */
    uint8_t node_id[OVL_NODE_ID_LEN]; /* BLAKE2b-256(ed_pk) */
};

/* Derives a whole identity from a 32-byte seed. Returns 0, or -EINVAL if
 * the derived key cannot be converted to X25519 (never for a real seed). */
int ovl_identity_from_seed(struct ovl_identity *id,
                           const uint8_t seed[OVL_SEED_LEN]);

/* A fresh identity from @rng (NULL: the system generator). */
int ovl_identity_generate(struct ovl_identity *id, const struct ovl_rng *rng);

/*
 * Loads the key file at @path. Returns 0, or a negative errno with a
 * human-readable reason in @err (if not NULL):
 *   -ENOENT  no such file;
 *   -EPERM   permissions allow group/other access, or another owner;
 *   -EINVAL  not a regular file, wrong size, bad magic, or the public key
 *            does not match the seed (corrupt file);
 *   other    from open/read/fstat.
 */
int ovl_identity_load(struct ovl_identity *id, const char *path, char *err,
                      size_t err_len);

/*
 * Loads @path, or creates it with a fresh identity from @rng if it does not
 * exist (see the file comment for how). *created (may be NULL) tells which.
 * If another process creates the file at the same moment, this one loads
 * the winner's identity. Errors as ovl_identity_load, plus those of
 * creating the file (e.g. -EACCES for an unwritable directory).
 */
int ovl_identity_load_or_create(struct ovl_identity *id, const char *path,
                                const struct ovl_rng *rng, bool *created,
                                char *err, size_t err_len);

/* Wipes the secret keys (and the rest). */
void ovl_identity_wipe(struct ovl_identity *id);

/* node id = BLAKE2b-256(Ed25519 public key). */
void ovl_node_id(uint8_t out[OVL_NODE_ID_LEN],
                 const uint8_t ed_pk[OVL_ED_PK_LEN]);

/* The X25519 public key of an Ed25519 public key. Returns 0, or -EINVAL
 * for a key that is not a valid point (a peer's garbage). */
int ovl_ed_to_x25519(uint8_t x_pk[OVL_X_LEN],
                     const uint8_t ed_pk[OVL_ED_PK_LEN]);

/* Printable public key: base64url without padding, 43 characters. */
void ovl_pk_to_text(char out[OVL_PK_TEXT_LEN],
                    const uint8_t pk[OVL_ED_PK_LEN]);

/* Parses a public key given as 43 base64url characters or 64 hex digits
 * (what a client's pin flag takes). Returns 0 or -EINVAL. */
int ovl_pk_from_text(uint8_t pk[OVL_ED_PK_LEN], const char *text);

/* Lowercase hex of a node id. */
void ovl_node_id_to_hex(char out[OVL_NODE_ID_HEX_LEN],
                        const uint8_t id[OVL_NODE_ID_LEN]);

#endif /* OVL_IDENTITY_H */
