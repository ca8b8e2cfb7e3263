/*
 * brg_store.c: the SQLite room store (brg_store.h).
 *
 * Durability: journal_mode=WAL with synchronous=FULL makes every COMMIT
 * fsync the WAL before it returns, so an acknowledged change survives
 * kill -9 and power loss. The directory is fsynced once after open, so
 * that a freshly created database file itself is durable.
 *
 * Schema: PRAGMA user_version holds the schema version. migrations[i]
 * takes a database from version i to i + 1; open applies the missing ones
 * in one transaction each. Never edit a released migration: append one.
 */
#include "brg_store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* migrations[i]: schema version i -> i + 1. */
static const char *const migrations[] = {
    /* 0 -> 1: the rooms table */
    "CREATE TABLE rooms ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " sample_rate INTEGER NOT NULL,"
    " frame_ms INTEGER NOT NULL,"
    " max_participants INTEGER NOT NULL,"
    " talkers INTEGER NOT NULL,"
    " silence_suppression INTEGER NOT NULL,"
    " comfort_noise INTEGER NOT NULL,"
    " pin_hash TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
               BRG_STORE_SCHEMA_VERSION,
               "one migration per schema version");

#define ROOM_COLUMNS "name, sample_rate, frame_ms, max_participants, " \
    "talkers, silence_suppression, comfort_noise, pin_hash, created_at"

enum stmt_id {
    ST_GET,
    ST_INSERT,
    ST_UPDATE,
    ST_DELETE,
    ST_LIST,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_GET] = "SELECT " ROOM_COLUMNS " FROM rooms WHERE name = ?1",
    [ST_INSERT] = "INSERT INTO rooms (" ROOM_COLUMNS ")"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_UPDATE] = "UPDATE rooms SET sample_rate = ?2, frame_ms = ?3,"
                  " max_participants = ?4, talkers = ?5,"
                  " silence_suppression = ?6, comfort_noise = ?7,"
                  " pin_hash = ?8,"
                  " created_at = CASE WHEN ?9 = 0 THEN created_at ELSE ?9 END"
                  " WHERE name = ?1",
    [ST_DELETE] = "DELETE FROM rooms WHERE name = ?1",
    [ST_LIST] = "SELECT " ROOM_COLUMNS " FROM rooms ORDER BY name",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

struct brg_store {
    sqlite3 *db;                    /* the connection */
    sqlite3_stmt *st[ST_COUNT];     /* prepared at open */
    pthread_mutex_t lock;           /* serialises every call */
};

/* Maps an SQLite result code (and the OS errno behind it) to -errno. */
static int sqlite_to_errno(sqlite3 *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return -EBADMSG;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_CANTOPEN: {
        int e = db ? sqlite3_system_errno(db) : 0;

        return (e == ENOENT || e == EACCES || e == EROFS || e == ENOTDIR ||
                e == EISDIR) ? -e : -EIO;
    }
    default:
        return -EIO;
    }
}

/* Writes "@path: @what" into @err when there is one. */
static void set_err(char *err, size_t errlen, const char *path,
                    const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", path, what);
}

/* Runs @sql (no results wanted). Returns the SQLite code. */
static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Runs a one-value PRAGMA @sql and copies its text result into @out
 * (@cap bytes). Returns the SQLite code. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return rc;
    out[0] = '\0';
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);

        snprintf(out, cap, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema from its current version up to
 * BRG_STORE_SCHEMA_VERSION. Returns 0 or -errno with @err set. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char text[32], msg[128];
    long version;
    int rc;

    rc = pragma_text(db, "PRAGMA user_version", text, sizeof(text));
    if (rc != SQLITE_OK)
        goto out_sqlite;
    version = strtol(text, NULL, 10);
    if (version > BRG_STORE_SCHEMA_VERSION || version < 0) {
        snprintf(msg, sizeof(msg), "schema version %ld is newer than this "
                 "build knows (%d): refusing to touch it", version,
                 BRG_STORE_SCHEMA_VERSION);
        set_err(err, errlen, path, msg);
        return -ENOTSUP;
    }
    for (long v = version; v < BRG_STORE_SCHEMA_VERSION; v++) {
        char bump[48];

        snprintf(bump, sizeof(bump), "PRAGMA user_version = %ld", v + 1);
        rc = exec(db, "BEGIN IMMEDIATE");
        if (rc != SQLITE_OK)
            goto out_sqlite;
        rc = exec(db, migrations[v]);
        if (rc == SQLITE_OK)
            rc = exec(db, bump);
        if (rc == SQLITE_OK)
            rc = exec(db, "COMMIT");
        if (rc != SQLITE_OK) {
            exec(db, "ROLLBACK");
            goto out_sqlite;
        }
    }
    return 0;

out_sqlite:
    snprintf(msg, sizeof(msg), "schema migration failed: %s",
             sqlite3_errmsg(db));
    set_err(err, errlen, path, msg);
    return sqlite_to_errno(db, rc);
}

/* Fsyncs the directory holding @path so a new file's entry is durable.
 * Best effort: the data itself is already synced by SQLite. */
static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd;

    if (!slash) {
        snprintf(dir, sizeof(dir), ".");
    } else if ((size_t)(slash - path) < sizeof(dir)) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);

        memcpy(dir, path, n);
        dir[n] = '\0';
    } else {
        return;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    fsync(fd);
    close(fd);
}

/* Sets the connection options and checks the file. Returns 0 or -errno
 * with @err set. A garbage file shows up here as SQLITE_NOTADB. */
static int configure(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char text[64];
    int rc;

    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BRG_STORE_BUSY_TIMEOUT_MS);
    rc = pragma_text(db, "PRAGMA journal_mode = WAL", text, sizeof(text));
    if (rc != SQLITE_OK)
        goto out_sqlite;
    if (strcmp(text, "wal") != 0) {
        set_err(err, errlen, path, "cannot switch to WAL journal mode");
        return -EIO;
    }
    rc = exec(db, "PRAGMA synchronous = FULL");
    if (rc != SQLITE_OK)
        goto out_sqlite;
    rc = pragma_text(db, "PRAGMA quick_check", text, sizeof(text));
    if (rc != SQLITE_OK)
        goto out_sqlite;
    if (strcmp(text, "ok") != 0) {
        set_err(err, errlen, path, "database is corrupt (quick_check failed)");
        return -EBADMSG;
    }
    return 0;

out_sqlite:
    rc = sqlite_to_errno(db, rc);
    if (rc == -EBADMSG)
        set_err(err, errlen, path, "not a Chorus database, or corrupt");
    else
        set_err(err, errlen, path, sqlite3_errmsg(db));
    return rc;
}

/* Prepares every statement of @s. Returns 0 or -errno with @err set. */
static int prepare_all(struct brg_store *s, const char *path, char *err,
                       size_t errlen)
{
    for (int i = 0; i < ST_COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);

        if (rc != SQLITE_OK) {
            set_err(err, errlen, path, sqlite3_errmsg(s->db));
            return sqlite_to_errno(s->db, rc);
        }
    }
    return 0;
}

/* Opens the store; see brg_store.h. */
int brg_store_open(struct brg_store **out, const char *path,
                   char *err, size_t errlen)
{
    struct brg_store *s;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    s = calloc(1, sizeof(*s));
    if (!s) {
        set_err(err, errlen, path, "out of memory");
        return -ENOMEM;
    }
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                         SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, path, s->db ? sqlite3_errmsg(s->db)
                                         : sqlite3_errstr(rc));
        rc = sqlite_to_errno(s->db, rc);
        goto out_close;
    }
    rc = configure(s->db, path, err, errlen);
    if (rc < 0)
        goto out_close;
    rc = migrate(s->db, path, err, errlen);
    if (rc < 0)
        goto out_close;
    rc = prepare_all(s, path, err, errlen);
    if (rc < 0)
        goto out_close;
    sync_dir(path);
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;

out_close:
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s);
    return rc;
}

/* Closes the store; see brg_store.h. */
void brg_store_close(struct brg_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Builds "<state_dir>/chorus.db"; see brg_store.h. */
int brg_store_path(char *buf, size_t cap, const char *state_dir)
{
    int n = snprintf(buf, cap, "%s/chorus.db", state_dir);

    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

/* Defaults of a new room; see brg_store.h. */
void brg_room_defaults(struct brg_room *r)
{
    memset(r, 0, sizeof(*r));
    r->sample_rate = 48000;
    r->frame_ms = 20;
    /* The same defaults as the REST API's (docs/openapi.json): silence
     * suppression is off, as Skype sends continuously to keep NAT bindings
     * open. */
    r->max_participants = 100;
    r->talkers = 3;
    r->silence_suppression = false;
    r->comfort_noise = false;
}

/* True for a URL-safe room name; see brg_store.h. RFC 3986 unreserved
 * characters need no escaping in a path segment. */
bool brg_room_name_valid(const char *name)
{
    size_t n = 0;

    if (!name)
        return false;
    for (; name[n]; n++) {
        char c = name[n];

        if (n >= BRG_ROOM_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
              c == '~'))
            return false;
    }
    return n > 0;
}

/* True when @h is "" or looks like a crypto_pwhash_str string. */
static bool pin_hash_valid(const char *h)
{
    size_t n = strnlen(h, BRG_PIN_HASH_MAX);

    if (n == 0)
        return true;
    if (n >= BRG_PIN_HASH_MAX || sodium_init() < 0)
        return false;
    return crypto_pwhash_str_needs_rehash(h, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                          crypto_pwhash_MEMLIMIT_INTERACTIVE) >= 0;
}

/* Binds the nine room columns of @r to @st (created_at as @created). */
static int bind_room(sqlite3_stmt *st, const struct brg_room *r,
                     int64_t created)
{
    int rc = sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);

    rc = rc ? rc : sqlite3_bind_int64(st, 2, r->sample_rate);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, r->frame_ms);
    rc = rc ? rc : sqlite3_bind_int64(st, 4, r->max_participants);
    rc = rc ? rc : sqlite3_bind_int64(st, 5, r->talkers);
    rc = rc ? rc : sqlite3_bind_int(st, 6, r->silence_suppression);
    rc = rc ? rc : sqlite3_bind_int(st, 7, r->comfort_noise);
    rc = rc ? rc : sqlite3_bind_text(st, 8, r->pin_hash, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 9, created);
    return rc;
}

/* Reads integer column @col of @st into *@v if it is an integer in
 * [0, @max]. Returns false for anything else (a damaged row). */
static bool col_uint(sqlite3_stmt *st, int col, int64_t max, int64_t *v)
{
    if (sqlite3_column_type(st, col) != SQLITE_INTEGER)
        return false;
    *v = sqlite3_column_int64(st, col);
    return *v >= 0 && *v <= max;
}

/* Decodes the current row of @st into @r. Returns 0 or -EIO when the row
 * does not hold a valid room (the file was edited or damaged). */
static int row_read(sqlite3_stmt *st, struct brg_room *r)
{
    const unsigned char *name = sqlite3_column_text(st, 0);
    const unsigned char *pin = sqlite3_column_text(st, 7);
    int64_t v[8];

    memset(r, 0, sizeof(*r));
    if (!name || !brg_room_name_valid((const char *)name) || !pin ||
        strlen((const char *)pin) >= BRG_PIN_HASH_MAX)
        return -EIO;
    for (int c = 1; c <= 6; c++)
        if (!col_uint(st, c, UINT32_MAX, &v[c]))
            return -EIO;
    if (!col_uint(st, 8, INT64_MAX, &v[7]))
        return -EIO;
    snprintf(r->name, sizeof(r->name), "%s", (const char *)name);
    r->sample_rate = (uint32_t)v[1];
    r->frame_ms = (uint32_t)v[2];
    r->max_participants = (uint32_t)v[3];
    r->talkers = (uint32_t)v[4];
    r->silence_suppression = v[5] != 0;
    r->comfort_noise = v[6] != 0;
    snprintf(r->pin_hash, sizeof(r->pin_hash), "%s", (const char *)pin);
    r->created_at = v[7];
    return 0;
}

/* Steps a statement that returns no rows, then resets it. Returns the
 * SQLite code (SQLITE_DONE on success). */
static int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* True when a room named @name exists; *@rc gets the SQLite code. */
static bool room_exists(struct brg_store *s, const char *name, int *rc)
{
    sqlite3_stmt *st = s->st[ST_GET];
    int r = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);

    if (r == SQLITE_OK)
        r = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    *rc = (r == SQLITE_ROW || r == SQLITE_DONE) ? SQLITE_OK : r;
    return r == SQLITE_ROW;
}

/* Validates a room given to put/insert. */
static bool room_valid(const struct brg_room *r)
{
    return brg_room_name_valid(r->name) && pin_hash_valid(r->pin_hash) &&
           r->created_at >= 0;
}

/* Writes @r inside one transaction: update if present (when @replace),
 * else insert. Returns 0, -EEXIST (present, !@replace) or -errno. Called
 * with the lock held. */
static int write_room(struct brg_store *s, const struct brg_room *r,
                      bool replace, bool *created)
{
    int64_t now = (int64_t)time(NULL);
    bool exists;
    int rc;

    rc = step_once(s->st[ST_BEGIN]);
    if (rc != SQLITE_DONE)
        return sqlite_to_errno(s->db, rc);
    exists = room_exists(s, r->name, &rc);
    if (rc != SQLITE_OK)
        goto out_rollback;
    if (exists && !replace) {
        step_once(s->st[ST_ROLLBACK]);
        return -EEXIST;
    }
    if (exists)
        rc = bind_room(s->st[ST_UPDATE], r, r->created_at);
    else
        rc = bind_room(s->st[ST_INSERT], r, r->created_at ? r->created_at : now);
    if (rc != SQLITE_OK)
        goto out_rollback;
    rc = step_once(s->st[exists ? ST_UPDATE : ST_INSERT]);
    if (rc != SQLITE_DONE)
        goto out_rollback;
    rc = step_once(s->st[ST_COMMIT]);
    if (rc != SQLITE_DONE)
        goto out_rollback;
    if (created)
        *created = !exists;
    return 0;

out_rollback:
    sqlite3_reset(s->st[ST_UPDATE]);
    sqlite3_reset(s->st[ST_INSERT]);
    step_once(s->st[ST_ROLLBACK]);
    return sqlite_to_errno(s->db, rc);
}

/* Inserts or replaces a room; see brg_store.h. */
int brg_store_room_put(struct brg_store *s, const struct brg_room *room,
                       bool *created)
{
    int rc;

    if (!room_valid(room))
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    rc = write_room(s, room, true, created);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Inserts a room that must not exist; see brg_store.h. */
int brg_store_room_insert(struct brg_store *s, const struct brg_room *room)
{
    int rc;

    if (!room_valid(room))
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    rc = write_room(s, room, false, NULL);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Reads one room; see brg_store.h. */
int brg_store_room_get(struct brg_store *s, const char *name,
                       struct brg_room *out)
{
    sqlite3_stmt *st = s->st[ST_GET];
    int rc;

    if (!brg_room_name_valid(name))
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = row_read(st, out);
    else if (rc == SQLITE_DONE)
        rc = -ENOENT;
    else
        rc = sqlite_to_errno(s->db, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Deletes one room; see brg_store.h. A single statement is its own
 * transaction, committed (and synced) before step returns. */
int brg_store_room_delete(struct brg_store *s, const char *name)
{
    sqlite3_stmt *st = s->st[ST_DELETE];
    int rc;

    if (!brg_room_name_valid(name))
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = step_once(st);
    if (rc == SQLITE_DONE)
        rc = sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
    else
        rc = sqlite_to_errno(s->db, rc);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Walks every room; see brg_store.h. */
int brg_store_room_list(struct brg_store *s, brg_store_room_cb cb, void *data)
{
    sqlite3_stmt *st = s->st[ST_LIST];
    struct brg_room r;
    int rc;

    pthread_mutex_lock(&s->lock);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = row_read(st, &r);
        if (rc == 0)
            rc = cb(&r, data);
        if (rc != 0)
            goto out_reset;
    }
    rc = rc == SQLITE_DONE ? 0 : sqlite_to_errno(s->db, rc);

out_reset:
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Hashes a PIN; see brg_store.h. */
int brg_store_pin_hash(char out[BRG_PIN_HASH_MAX], const char *pin)
{
    size_t n = pin ? strnlen(pin, BRG_PIN_MAX + 1) : 0;

    _Static_assert(BRG_PIN_HASH_MAX == crypto_pwhash_STRBYTES,
                   "pin hash buffer matches libsodium");
    out[0] = '\0';
    if (n == 0 || n > BRG_PIN_MAX)
        return -EINVAL;
    if (sodium_init() < 0)
        return -ENOMEM;
    if (crypto_pwhash_str(out, pin, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        out[0] = '\0';
        return -ENOMEM;
    }
    return 0;
}

/* Checks a PIN against a hash; see brg_store.h. */
bool brg_store_pin_verify(const char *hash, const char *pin)
{
    size_t hn, pn;

    if (!hash || !pin)
        return false;
    hn = strnlen(hash, BRG_PIN_HASH_MAX);
    pn = strnlen(pin, BRG_PIN_MAX + 1);
    if (hn == 0 || hn >= BRG_PIN_HASH_MAX || pn > BRG_PIN_MAX ||
        sodium_init() < 0)
        return false;
    return crypto_pwhash_str_verify(hash, pin, pn) == 0;
}
