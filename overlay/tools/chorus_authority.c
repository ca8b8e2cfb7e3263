/*
 * chorus-authority: the login authority's tool. Creates the authority's
 * Ed25519 key (the same key-file format as a node identity,
 * docs/protocol.md 1.3) and signs handle and room certificates
 * (struct ovl_certw, docs/protocol.md part 2) that supernodes configured
 * with the authority's public key require.
 *
 *   chorus-authority keygen KEYFILE
 *   chorus-authority pubkey KEYFILE
 *   chorus-authority sign KEYFILE --name NAME --subject KEY
 *                         [--room] [--days N] [--out FILE]
 *   chorus-authority show CERTFILE [--authority KEY]
 *
 * Exit status: 0 on success, 1 on a usage error, 2 on any other failure.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ovl_identity.h"
#include "ovl_record.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  chorus-authority keygen KEYFILE\n"
            "      create the authority key (mode 0600) and print its public key\n"
            "  chorus-authority pubkey KEYFILE\n"
            "      print the public key (give it to supernodes: --authority)\n"
            "  chorus-authority sign KEYFILE --name NAME --subject KEY [--room]\n"
            "                        [--days N] [--out FILE]\n"
            "      certify that the node with public key KEY may use handle (or,\n"
            "      with --room, room name) NAME for N days (default 365); writes\n"
            "      the 212-byte certificate to FILE, or prints it in base64url\n"
            "  chorus-authority show CERTFILE [--authority KEY]\n"
            "      print a certificate (binary or base64url) and check its\n"
            "      signature (against KEY if given)\n");
}

static int load_key(struct ovl_identity *id, const char *path)
{
    char err[256];
    int ret = ovl_identity_load(id, path, err, sizeof(err));

    if (ret)
        fprintf(stderr, "chorus-authority: %s: %s\n", path, err);
    return ret;
}

static int cmd_keygen(const char *path)
{
    struct ovl_identity id;
    char err[256], text[OVL_PK_TEXT_LEN];
    bool created = false;
    int ret;

    ret = ovl_identity_load(&id, path, err, sizeof(err));
    if (ret == 0) {
        fprintf(stderr, "chorus-authority: %s already exists (not replaced)\n",
                path);
        ovl_identity_wipe(&id);
        return 2;
    }
    if (ret != -ENOENT) {
        fprintf(stderr, "chorus-authority: %s: %s\n", path, err);
        return 2;
    }
    ret = ovl_identity_load_or_create(&id, path, NULL, &created, err,
                                      sizeof(err));
    if (ret) {
        fprintf(stderr, "chorus-authority: %s: %s\n", path, err);
        return 2;
    }
    ovl_pk_to_text(text, id.ed_pk);
    printf("%s\n", text);
    ovl_identity_wipe(&id);
    return 0;
}

static int cmd_pubkey(const char *path)
{
    struct ovl_identity id;
    char text[OVL_PK_TEXT_LEN];

    if (load_key(&id, path))
        return 2;
    ovl_pk_to_text(text, id.ed_pk);
    printf("%s\n", text);
    ovl_identity_wipe(&id);
    return 0;
}

static int write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL || fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "chorus-authority: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return 2;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "chorus-authority: %s: %s\n", path, strerror(errno));
        return 2;
    }
    return 0;
}

static int cmd_sign(const char *keyfile, const char *name, const char *subject,
                    bool room, long days, const char *out)
{
    uint8_t cert[OVL_CERT_LEN];
    char b64[sodium_base64_ENCODED_LEN(OVL_CERT_LEN,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    struct ovl_identity id;
    struct ovl_cert c = {0};
    uint64_t now = (uint64_t)time(NULL);
    int ret;

    if (name == NULL || subject == NULL || days <= 0 || days > 36500) {
        usage(stderr);
        return 1;
    }
    if (!ovl_name_valid(name, strlen(name))) {
        fprintf(stderr, "chorus-authority: name must be 1..%d printable ASCII "
                        "characters without spaces\n", OVL_NAME_MAX);
        return 1;
    }
    if (ovl_pk_from_text(c.subject, subject) != 0) {
        fprintf(stderr, "chorus-authority: --subject: not a public key "
                        "(43 base64url characters or 64 hex digits)\n");
        return 1;
    }
    if (load_key(&id, keyfile))
        return 2;
    c.kind = room ? OVL_CERT_ROOM : OVL_CERT_HANDLE;
    c.name_len = (uint8_t)strlen(name);
    memcpy(c.name, name, c.name_len);
    c.not_before = now - 60; /* tolerate clocks slightly behind */
    c.not_after = now + (uint64_t)days * 86400;
    ret = ovl_cert_sign(cert, &id, &c);
    ovl_identity_wipe(&id);
    if (ret) {
        fprintf(stderr, "chorus-authority: signing failed (%d)\n", ret);
        return 2;
    }
    if (out)
        return write_file(out, cert, sizeof(cert));
    sodium_bin2base64(b64, sizeof(b64), cert, sizeof(cert),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    printf("%s\n", b64);
    return 0;
}

static int cmd_show(const char *path, const char *authority)
{
    uint8_t cert[OVL_CERT_LEN], auth[OVL_ED_PK_LEN];
    char text[OVL_PK_TEXT_LEN];
    struct ovl_cert c;
    enum ovl_rerr why;
    uint64_t now = (uint64_t)time(NULL);
    int ret;

    if (authority && ovl_pk_from_text(auth, authority) != 0) {
        fprintf(stderr, "chorus-authority: --authority: not a public key\n");
        return 1;
    }
    char err[512];

    if (ovl_cert_read_file(path, cert, err, sizeof(err)) != 0) {
        fprintf(stderr, "chorus-authority: %s\n", err);
        return 2;
    }
    ret = ovl_cert_verify(&c, cert, sizeof(cert), authority ? auth : NULL,
                          now, &why);
    if (ret && why == OVL_RERR_CERT_EXPIRED)
        ret = ovl_cert_verify(&c, cert, sizeof(cert),
                              authority ? auth : NULL,
                              ovl_load_le64(cert + 4 + OVL_NAME_MAX + 32),
                              NULL);
    if (ret == 0) {
        printf("kind:       %s\n", c.kind == OVL_CERT_ROOM ? "room" : "handle");
        printf("name:       %s\n", c.name);
        ovl_pk_to_text(text, c.subject);
        printf("subject:    %s\n", text);
        ovl_pk_to_text(text, c.authority);
        printf("authority:  %s\n", text);
        printf("not before: %llu\n", (unsigned long long)c.not_before);
        printf("not after:  %llu\n", (unsigned long long)c.not_after);
    }
    printf("status:     %s\n",
           why == OVL_RERR_NONE ? "valid" : ovl_rerr_name(why));
    return why == OVL_RERR_NONE ? 0 : 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"subject", required_argument, NULL, 's'},
        {"room", no_argument, NULL, 'r'},
        {"days", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'},
        {"authority", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *subject = NULL, *out = NULL, *authority = NULL;
    const char *cmd, *arg;
    bool room = false;
    long days = 365;
    int c;

    if (sodium_init() < 0)
        return 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 'r':
            room = true;
            break;
        case 'd':
            days = strtol(optarg, NULL, 10);
            break;
        case 'o':
            out = optarg;
            break;
        case 'a':
            authority = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 1;
    }
    cmd = argv[optind];
    arg = argv[optind + 1];
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(arg);
    if (strcmp(cmd, "pubkey") == 0)
        return cmd_pubkey(arg);
    if (strcmp(cmd, "sign") == 0)
        return cmd_sign(arg, name, subject, room, days, out);
    if (strcmp(cmd, "show") == 0)
        return cmd_show(arg, authority);
    usage(stderr);
    return 1;
}
