/*
 * test_ovl_identity.c: the key file (created 0600, atomic, reloaded
 * identical, refused when its permissions, owner, size or content are
 * wrong) and the printable forms of keys.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ovl_identity.h"

static char dir[64];
static char path[128];

static void make_dir(void)
{
    cr_assert_geq(sodium_init(), 0);
    snprintf(dir, sizeof(dir), "/tmp/ovl-identity-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/node.key", dir);
}

static void remove_dir(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", dir);
}

TestSuite(identity, .init = make_dir, .fini = remove_dir);

Test(identity, created_0600_and_reloaded_identical)
{
    struct ovl_identity a, b;
    struct stat st;
    bool created = false;
    char err[256] = "";

    cr_assert_eq(ovl_identity_load_or_create(&a, path, NULL, &created, err,
                                             sizeof(err)),
                 0, "%s", err);
    cr_expect(created);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0600);
    cr_expect_eq(st.st_size, OVL_IDENTITY_FILE_LEN);

    cr_assert_eq(ovl_identity_load_or_create(&b, path, NULL, &created, err,
                                             sizeof(err)),
                 0, "%s", err);
    cr_expect_not(created);
    cr_expect_arr_eq(&a, &b, sizeof(a));

    /* The parts fit together: node id, X25519 forms, signing works. */
    {
        uint8_t id[32], x[32], sig[64];
        ovl_node_id(id, a.ed_pk);
        cr_expect_arr_eq(id, a.node_id, 32);
        crypto_generichash(id, 32, a.ed_pk, 32, NULL, 0);
        cr_expect_arr_eq(id, a.node_id, 32);
        cr_assert_eq(ovl_ed_to_x25519(x, a.ed_pk), 0);
        cr_expect_arr_eq(x, a.x_pk, 32);
        crypto_scalarmult_base(x, a.x_sk);
        cr_expect_arr_eq(x, a.x_pk, 32);
        crypto_sign_detached(sig, NULL, (const uint8_t *)"m", 1, a.ed_sk);
        cr_expect_eq(crypto_sign_verify_detached(sig, (const uint8_t *)"m",
                                                 1, a.ed_pk),
                     0);
    }

    /* No temporary file is left behind. */
    {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
        cr_expect_eq(system(cmd), 0);
    }
    ovl_identity_wipe(&a);
    ovl_identity_wipe(&b);
}

Test(identity, refused_with_group_or_other_permissions)
{
    struct ovl_identity id;
    char err[256] = "";
    static const mode_t bad[] = {0640, 0604, 0660, 0644, 0700 | 0040};

    cr_assert_eq(ovl_identity_load_or_create(&id, path, NULL, NULL, NULL, 0),
                 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(chmod(path, bad[i]), 0);
        err[0] = 0;
        cr_expect_eq(ovl_identity_load(&id, path, err, sizeof(err)), -EPERM,
                     "mode %o", (unsigned)bad[i]);
        cr_expect_not_null(strstr(err, "chmod 600"), "message: %s", err);
        /* load_or_create must not overwrite a refused file either. */
        cr_expect_eq(ovl_identity_load_or_create(&id, path, NULL, NULL, err,
                                                 sizeof(err)),
                     -EPERM);
    }
    cr_assert_eq(chmod(path, 0400), 0);
    cr_expect_eq(ovl_identity_load(&id, path, NULL, 0), 0);
}

Test(identity, refused_when_owned_by_someone_else)
{
    struct ovl_identity id;
    char err[256] = "";

    if (geteuid() != 0)
        cr_skip_test("needs root to chown");
    cr_assert_eq(ovl_identity_load_or_create(&id, path, NULL, NULL, NULL, 0),
                 0);
    cr_assert_eq(chown(path, 65534, 65534), 0);
    cr_expect_eq(ovl_identity_load(&id, path, err, sizeof(err)), -EPERM);
    cr_expect_not_null(strstr(err, "owned by uid 65534"), "%s", err);
}

static void write_file(const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

Test(identity, refused_when_size_magic_or_key_wrong)
{
    uint8_t file[OVL_IDENTITY_FILE_LEN + 1];
    struct ovl_identity id;
    int fd;
    char err[256] = "";

    cr_assert_eq(ovl_identity_load_or_create(&id, path, NULL, NULL, NULL, 0),
                 0);
    fd = open(path, O_RDONLY);
    cr_assert_eq(read(fd, file, sizeof(file)), OVL_IDENTITY_FILE_LEN);
    close(fd);

    write_file(file, OVL_IDENTITY_FILE_LEN - 1);
    cr_expect_eq(ovl_identity_load(&id, path, err, sizeof(err)), -EINVAL);
    cr_expect_not_null(strstr(err, "expected 80"), "%s", err);
    file[OVL_IDENTITY_FILE_LEN] = 0;
    write_file(file, OVL_IDENTITY_FILE_LEN + 1);
    cr_expect_eq(ovl_identity_load(&id, path, NULL, 0), -EINVAL);
    write_file(file, 0);
    cr_expect_eq(ovl_identity_load(&id, path, NULL, 0), -EINVAL);

    file[0] ^= 1; /* magic */
    write_file(file, OVL_IDENTITY_FILE_LEN);
    cr_expect_eq(ovl_identity_load(&id, path, NULL, 0), -EINVAL);
    file[0] ^= 1;
    file[OVL_IDENTITY_FILE_LEN - 1] ^= 1; /* stored public key */
    write_file(file, OVL_IDENTITY_FILE_LEN);
    cr_expect_eq(ovl_identity_load(&id, path, err, sizeof(err)), -EINVAL);
    cr_expect_not_null(strstr(err, "corrupt"), "%s", err);
    file[OVL_IDENTITY_FILE_LEN - 1] ^= 1;
    file[20] ^= 1; /* seed: the stored public key no longer matches */
    write_file(file, OVL_IDENTITY_FILE_LEN);
    cr_expect_eq(ovl_identity_load(&id, path, NULL, 0), -EINVAL);

    /* A directory or a symlink is not a key file. */
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_expect_eq(ovl_identity_load(&id, path, NULL, 0), -EINVAL);
    cr_assert_eq(rmdir(path), 0);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    cr_expect_eq(ovl_identity_load(&id, path, NULL, 0), -ELOOP);
}

Test(identity, missing_file_and_unwritable_directory)
{
    struct ovl_identity id;
    char bad[256];

    cr_expect_eq(ovl_identity_load(&id, path, NULL, 0), -ENOENT);
    snprintf(bad, sizeof(bad), "%s/no/such/dir/node.key", dir);
    cr_expect_eq(ovl_identity_load_or_create(&id, bad, NULL, NULL, NULL, 0),
                 -ENOENT);
}

static void counting_rng(void *data, uint8_t *buf, size_t len)
{
    uint8_t *c = data;
    for (size_t i = 0; i < len; i++)
        buf[i] = (*c)++;
}

Test(identity, deterministic_from_rng_and_seed)
{
    struct ovl_identity a, b;
    uint8_t ca = 0, cb = 0, seed[32];
    struct ovl_rng ra = {counting_rng, &ca}, rb = {counting_rng, &cb};

    cr_assert_eq(ovl_identity_generate(&a, &ra), 0);
    cr_assert_eq(ovl_identity_generate(&b, &rb), 0);
    cr_expect_arr_eq(&a, &b, sizeof(a));
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    cr_assert_eq(ovl_identity_from_seed(&b, seed), 0);
    cr_expect_arr_eq(&a, &b, sizeof(a));
    /* RFC 8032 is libsodium's business; here only: seed -> same keys. */
}

Test(identity, printable_public_keys)
{
    struct ovl_identity id;
    char text[OVL_PK_TEXT_LEN], hex[65], nid[OVL_NODE_ID_HEX_LEN];
    uint8_t pk[32];

    cr_assert_eq(ovl_identity_generate(&id, NULL), 0);
    ovl_pk_to_text(text, id.ed_pk);
    cr_expect_eq(strlen(text), 43u);
    cr_expect_null(strpbrk(text, "+/="), "base64url without padding");
    cr_assert_eq(ovl_pk_from_text(pk, text), 0);
    cr_expect_arr_eq(pk, id.ed_pk, 32);

    sodium_bin2hex(hex, sizeof(hex), id.ed_pk, 32);
    memset(pk, 0, sizeof(pk));
    cr_assert_eq(ovl_pk_from_text(pk, hex), 0);
    cr_expect_arr_eq(pk, id.ed_pk, 32);

    cr_expect_eq(ovl_pk_from_text(pk, ""), -EINVAL);
    cr_expect_eq(ovl_pk_from_text(pk, NULL), -EINVAL);
    text[5] = '*';
    cr_expect_eq(ovl_pk_from_text(pk, text), -EINVAL);
    hex[10] = 'g';
    cr_expect_eq(ovl_pk_from_text(pk, hex), -EINVAL);
    hex[10] = 0;
    cr_expect_eq(ovl_pk_from_text(pk, hex), -EINVAL);

    ovl_node_id_to_hex(nid, id.node_id);
    cr_expect_eq(strlen(nid), 64u);
}
