/*
 * ovl_identity.c: Ed25519 identities and the key file. See ovl_identity.h.
 */
#include "ovl_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(OVL_ED_SK_LEN == crypto_sign_SECRETKEYBYTES, "ed sk");
_Static_assert(OVL_ED_PK_LEN == crypto_sign_PUBLICKEYBYTES, "ed pk");
_Static_assert(OVL_SEED_LEN == crypto_sign_SEEDBYTES, "seed");
_Static_assert(sizeof(OVL_IDENTITY_MAGIC) - 1 == OVL_IDENTITY_MAGIC_LEN,
               "magic");

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

void ovl_node_id(uint8_t out[OVL_NODE_ID_LEN],
                 const uint8_t ed_pk[OVL_ED_PK_LEN])
{
    crypto_generichash_blake2b(out, OVL_NODE_ID_LEN, ed_pk, OVL_ED_PK_LEN,
                               NULL, 0);
}

int ovl_ed_to_x25519(uint8_t x_pk[OVL_X_LEN],
                     const uint8_t ed_pk[OVL_ED_PK_LEN])
{
    if (sodium_init() < 0)
        return -EIO;
    return crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) == 0 ? 0
                                                                  : -EINVAL;
}

int ovl_identity_from_seed(struct ovl_identity *id,
                           const uint8_t seed[OVL_SEED_LEN])
{
    if (sodium_init() < 0)
        return -EIO;
    memset(id, 0, sizeof(*id));
    crypto_sign_seed_keypair(id->ed_pk, id->ed_sk, seed);
    if (crypto_sign_ed25519_pk_to_curve25519(id->x_pk, id->ed_pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(id->x_sk, id->ed_sk) != 0) {
        ovl_identity_wipe(id);
        return -EINVAL;
    }
    ovl_node_id(id->node_id, id->ed_pk);
    return 0;
}

int ovl_identity_generate(struct ovl_identity *id, const struct ovl_rng *rng)
{
    uint8_t seed[OVL_SEED_LEN];
    int ret;

    if (sodium_init() < 0)
        return -EIO;
    ovl_rng_bytes(rng, seed, sizeof(seed));
    ret = ovl_identity_from_seed(id, seed);
    sodium_memzero(seed, sizeof(seed));
    return ret;
}

void ovl_identity_wipe(struct ovl_identity *id)
{
    sodium_memzero(id, sizeof(*id));
}

/* Reads exactly @len bytes (a short file is caught by fstat first, but a
 * file can shrink between the two). */
static int read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EINVAL;
        got += (size_t)n;
    }
    return 0;
}

/* Checks what fstat says about an open key file. */
static int check_stat(const struct stat *st, const char *path, char *err,
                      size_t err_len)
{
    if (!S_ISREG(st->st_mode)) {
        set_err(err, err_len, "identity file %s is not a regular file",
                path);
        return -EINVAL;
    }
    if (st->st_uid != geteuid()) {
        set_err(err, err_len,
                "identity file %s is owned by uid %u, not by this user "
                "(uid %u); refusing to use it",
                path, (unsigned)st->st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        set_err(err, err_len,
                "identity file %s has mode %04o: group/other may access the "
                "secret key; run 'chmod 600 %s'",
                path, (unsigned)(st->st_mode & 07777), path);
        return -EPERM;
    }
    if (st->st_size != OVL_IDENTITY_FILE_LEN) {
        set_err(err, err_len,
                "identity file %s has %lld bytes, expected %d: not a Chorus "
                "identity file",
                path, (long long)st->st_size, OVL_IDENTITY_FILE_LEN);
        return -EINVAL;
    }
    return 0;
}

int ovl_identity_load(struct ovl_identity *id, const char *path, char *err,
                      size_t err_len)
{
    uint8_t file[OVL_IDENTITY_FILE_LEN];
    struct stat st;
    int fd, ret;

    if (sodium_init() < 0)
        return -EIO;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ret = -errno;
        set_err(err, err_len, "cannot open identity file %s: %s", path,
                strerror(-ret));
        return ret;
    }
    if (fstat(fd, &st) != 0) {
        ret = -errno;
        set_err(err, err_len, "cannot stat identity file %s: %s", path,
                strerror(-ret));
        goto out_close;
    }
    ret = check_stat(&st, path, err, err_len);
    if (ret)
        goto out_close;
    ret = read_full(fd, file, sizeof(file));
    if (ret) {
        set_err(err, err_len, "cannot read identity file %s", path);
        goto out_wipe;
    }
    if (memcmp(file, OVL_IDENTITY_MAGIC, OVL_IDENTITY_MAGIC_LEN) != 0) {
        set_err(err, err_len,
                "identity file %s does not start with \"%s\"", path,
                OVL_IDENTITY_MAGIC);
        ret = -EINVAL;
        goto out_wipe;
    }
    ret = ovl_identity_from_seed(id, file + OVL_IDENTITY_MAGIC_LEN);
    if (ret == 0 &&
        sodium_memcmp(id->ed_pk, file + OVL_IDENTITY_MAGIC_LEN + OVL_SEED_LEN,
                      OVL_ED_PK_LEN) != 0) {
        set_err(err, err_len,
                "identity file %s is corrupt: its public key does not match "
                "its seed",
                path);
        ovl_identity_wipe(id);
        ret = -EINVAL;
    }
out_wipe:
    sodium_memzero(file, sizeof(file));
out_close:
    close(fd);
    return ret;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

/* Makes @tmp the file at @path without ever replacing an existing one.
 * Returns 0, -EEXIST if @path appeared meanwhile, or another -errno. */
static int rename_noclobber(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* The file system cannot do RENAME_NOREPLACE: link() also refuses to
     * replace, then drop the temporary name. */
    if (link(tmp, path) != 0)
        return -errno;
    unlink(tmp);
    return 0;
}

/* fsync of the directory holding @path, so the rename is durable. */
static void sync_dir(const char *path)
{
    char copy[PATH_MAX];
    int fd;

    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
        return;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Creates @path holding @id. -EEXIST if it already exists. */
static int create_file(const struct ovl_identity *id, const char *path,
                       char *err, size_t err_len)
{
    uint8_t file[OVL_IDENTITY_FILE_LEN];
    char tmp[PATH_MAX];
    int fd, ret;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
        (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = mkostemp(tmp, O_CLOEXEC);  /* mode 0600 */
    if (fd < 0) {
        ret = -errno;
        set_err(err, err_len, "cannot create identity file next to %s: %s",
                path, strerror(-ret));
        return ret;
    }
    memcpy(file, OVL_IDENTITY_MAGIC, OVL_IDENTITY_MAGIC_LEN);
    /* libsodium's secret key is seed || public key: exactly our layout. */
    memcpy(file + OVL_IDENTITY_MAGIC_LEN, id->ed_sk, OVL_ED_SK_LEN);
    ret = fchmod(fd, S_IRUSR | S_IWUSR) ? -errno : 0;
    if (ret == 0)
        ret = write_full(fd, file, sizeof(file));
    if (ret == 0 && fsync(fd) != 0)
        ret = -errno;
    if (close(fd) != 0 && ret == 0)
        ret = -errno;
    if (ret == 0)
        ret = rename_noclobber(tmp, path);
    if (ret != 0) {
        unlink(tmp);
        if (ret != -EEXIST)
            set_err(err, err_len, "cannot write identity file %s: %s", path,
                    strerror(-ret));
    } else {
        sync_dir(path);
    }
    sodium_memzero(file, sizeof(file));
    return ret;
}

int ovl_identity_load_or_create(struct ovl_identity *id, const char *path,
                                const struct ovl_rng *rng, bool *created,
                                char *err, size_t err_len)
{
    int ret;

    if (created)
        *created = false;
    ret = ovl_identity_load(id, path, err, err_len);
    if (ret != -ENOENT)
        return ret;
    ret = ovl_identity_generate(id, rng);
    if (ret)
        return ret;
    ret = create_file(id, path, err, err_len);
    if (ret == -EEXIST) {
        /* Lost a race with another process: use its identity. */
        ovl_identity_wipe(id);
        return ovl_identity_load(id, path, err, err_len);
    }
    if (ret) {
        ovl_identity_wipe(id);
        return ret;
    }
    if (created)
        *created = true;
    return 0;
}

void ovl_pk_to_text(char out[OVL_PK_TEXT_LEN],
                    const uint8_t pk[OVL_ED_PK_LEN])
{
    sodium_bin2base64(out, OVL_PK_TEXT_LEN, pk, OVL_ED_PK_LEN,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int ovl_pk_from_text(uint8_t pk[OVL_ED_PK_LEN], const char *text)
{
    size_t len, bin_len = 0;
    const char *end = NULL;
    int ret;

    if (text == NULL)
        return -EINVAL;
    len = strlen(text);
    if (len == 2 * OVL_ED_PK_LEN)
        ret = sodium_hex2bin(pk, OVL_ED_PK_LEN, text, len, NULL, &bin_len,
                             &end);
    else if (len == OVL_PK_TEXT_LEN - 1)
        ret = sodium_base642bin(pk, OVL_ED_PK_LEN, text, len, NULL, &bin_len,
                                &end,
                                sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    else
        return -EINVAL;
    if (ret != 0 || bin_len != OVL_ED_PK_LEN || end != text + len)
        return -EINVAL;
    return 0;
}

void ovl_node_id_to_hex(char out[OVL_NODE_ID_HEX_LEN],
                        const uint8_t id[OVL_NODE_ID_LEN])
{
    sodium_bin2hex(out, OVL_NODE_ID_HEX_LEN, id, OVL_NODE_ID_LEN);
}
