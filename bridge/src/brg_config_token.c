/*
 * brg_config_token.c: the state directory and the generated API token
 * (brg_config.h).
 *
 * The token file is created without ever being visible half-written or
 * with a loose mode: the token goes to a mkstemp file (mode 0600), is
 * fsynced, then link()ed to its final name. link fails with EEXIST when
 * another process won the race; then that process's token is read, so
 * every starter agrees on one token.
 */
#include "brg_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    TOKEN_FILE_MAX = 512,   /* longest token accepted from the file */
    TOKEN_B64_LEN = 43,     /* base64url, no padding, of 32 bytes */
};

_Static_assert(TOKEN_B64_LEN + 1 ==
               sodium_base64_ENCODED_LEN(BRG_API_TOKEN_BYTES,
                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "token length");

/* Creates a directory and missing parents, mode 0700; see brg_config.h. */
int brg_config_make_state_dir(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0)
        return -EINVAL;
    if (n >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        {
            char saved = *p;

            *p = '\0';
            if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
            *p = saved;
        }
        if (*p == '\0')
            break;
    }
    {
        struct stat st;

        if (stat(dir, &st) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
    }
    return 0;
}

/* True for a base64url character. */
static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Reads the token from the open file @fd into a malloc'd string, after
 * tightening the mode to 0600. Returns 0, -EBADMSG or -errno. */
static int token_read(int fd, char **token)
{
    char buf[TOKEN_FILE_MAX + 2];
    struct stat st;
    size_t len = 0;
    ssize_t n;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EBADMSG;
    if ((st.st_mode & 0077) && fchmod(fd, 0600) < 0)
        return -errno;
    while (len < sizeof(buf) - 1 &&
           (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        len += (size_t)n;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len < BRG_API_TOKEN_MIN || len > TOKEN_FILE_MAX)
        goto out_bad;
    for (size_t i = 0; i < len; i++)
        if (!b64url_char(buf[i]))
            goto out_bad;
    buf[len] = '\0';
    *token = strdup(buf);
    sodium_memzero(buf, sizeof(buf));
    return *token ? 0 : -ENOMEM;

out_bad:
    sodium_memzero(buf, sizeof(buf));
    return -EBADMSG;
}

/* Opens and reads the token file @path. Returns 0, -ENOENT when it does
 * not exist, -EBADMSG or -errno. */
static int token_load(const char *path, char **token)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc;

    if (fd < 0)
        return -errno;
    rc = token_read(fd, token);
    close(fd);
    return rc;
}

/* Writes all @len bytes of @buf to @fd. Returns 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Fsyncs directory @dir (best effort: makes the new name durable). */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Creates @path holding a fresh token, atomically. Returns 0, -EEXIST
 * when another process created it first, or -errno. */
static int token_create(const char *dir, const char *path)
{
    unsigned char raw[BRG_API_TOKEN_BYTES];
    char b64[TOKEN_B64_LEN + 2];
    char tmp[PATH_MAX];
    int fd, rc;

    if (snprintf(tmp, sizeof(tmp), "%s/.api-token.XXXXXX", dir) >=
        (int)sizeof(tmp))
        return -ENAMETOOLONG;
    if (sodium_init() < 0)
        return -ENOMEM;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64) - 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    strcat(b64, "\n");

    fd = mkstemp(tmp);      /* mode 0600 */
    if (fd < 0) {
        rc = -errno;
        goto out_wipe;
    }
    rc = write_all(fd, b64, strlen(b64));
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && link(tmp, path) < 0)
        rc = -errno;
    unlink(tmp);
    if (rc == 0)
        sync_dir(dir);

out_wipe:
    sodium_memzero(b64, sizeof(b64));
    return rc;
}

/* Returns the stored token, creating it once; see brg_config.h. */
int brg_config_load_or_create_token(const char *state_dir, char **token)
{
    char path[PATH_MAX];
    int rc;

    *token = NULL;
    rc = brg_config_make_state_dir(state_dir);
    if (rc < 0)
        return rc;
    if (snprintf(path, sizeof(path), "%s/api-token", state_dir) >=
        (int)sizeof(path))
        return -ENAMETOOLONG;
    rc = token_load(path, token);
    if (rc != -ENOENT)
        return rc;
    rc = token_create(state_dir, path);
    if (rc < 0 && rc != -EEXIST)
        return rc;
    return token_load(path, token);
}
