/*
 * brg_store.h: the durable room store of the bridge (SQLite).
 *
 * One database file, <state_dir>/chorus.db (brg_store_path builds it),
 * opened in WAL mode with synchronous=FULL: once brg_store_room_put (or
 * _insert, _delete) has returned 0, the change survives kill -9 and power
 * loss. busy_timeout is set so a second process (an admin tool) does not
 * make calls fail at once. The schema is versioned with PRAGMA
 * user_version and upgraded forward on open; a database written by a newer
 * Chorus is refused (-ENOTSUP) instead of being damaged.
 *
 * PINs are never stored: brg_store_pin_hash turns a PIN into a libsodium
 * crypto_pwhash_str string (Argon2id, interactive limits), kept in
 * brg_room.pin_hash, and brg_store_pin_verify checks a candidate.
 *
 * Thread: any. A handle has its own mutex, so calls from the loop and the
 * API threads are serialised; each call is short (one transaction) but
 * does disk I/O with fsync: never call it from the real-time thread.
 * brg_store_pin_hash/verify take ~100 ms and 64 MiB by design: not on the
 * loop thread either when it can be avoided.
 *
 * Usage:
 *
 *     char path[PATH_MAX], err[256];
 *     struct brg_store *st;
 *     if (brg_store_path(path, sizeof path, cfg.state_dir) < 0) ...;
 *     int rc = brg_store_open(&st, path, err, sizeof err);
 *     if (rc < 0) { fprintf(stderr, "%s\n", err); exit(1); }
 *
 *     struct brg_room r;
 *     brg_room_defaults(&r);
 *     snprintf(r.name, sizeof r.name, "%s", "demo");
 *     rc = brg_store_room_insert(st, &r);          // -EEXIST if there
 *
 *     if (brg_store_pin_hash(r.pin_hash, "1234") == 0)
 *         rc = brg_store_room_put(st, &r, &created);
 *     ...
 *     static int each(const struct brg_room *room, void *data) {
 *         return 0;                                // non-zero stops
 *     }
 *     rc = brg_store_room_list(st, each, NULL);
 *     brg_store_close(st);
 */
#ifndef BRG_STORE_H
#define BRG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    BRG_ROOM_NAME_MAX = 64,      /* bytes, without the NUL */
    BRG_PIN_HASH_MAX = 128,      /* crypto_pwhash_STRBYTES, with the NUL */
    BRG_PIN_MAX = 64,            /* longest PIN accepted for hashing */
    BRG_STORE_SCHEMA_VERSION = 1,/* PRAGMA user_version this code writes */
    BRG_STORE_BUSY_TIMEOUT_MS = 5000,
};

/* A room record. Plain data, copied in and out of the store. */
struct brg_room {
    char name[BRG_ROOM_NAME_MAX + 1]; /* primary key; 1..64 characters of
                                         [A-Za-z0-9._~-] (URL-safe) */
    uint32_t sample_rate;        /* Hz */
    uint32_t frame_ms;           /* mixing frame, ms */
    uint32_t max_participants;   /* 0 means the bridge's limit */
    uint32_t talkers;            /* loudest talkers mixed */
    bool silence_suppression;    /* skip sending silence (DTX) */
    bool comfort_noise;          /* add comfort noise to the mix */
    char pin_hash[BRG_PIN_HASH_MAX]; /* "" (no PIN) or crypto_pwhash_str */
    int64_t created_at;          /* unix seconds; 0 on put = keep/now */
};

/* An open store. Opaque; see the top of the file for threads. */
struct brg_store;

/* Fills @r with the defaults of a new room, the same as the REST API's: no
 * name, 48000 Hz, 20 ms, max_participants 100, talkers 3, silence
 * suppression and comfort noise off, no PIN, created_at 0. */
void brg_room_defaults(struct brg_room *r);

/* True when @name is a valid room name (1..BRG_ROOM_NAME_MAX characters of
 * [A-Za-z0-9._~-]). */
bool brg_room_name_valid(const char *name);

/* Writes "<state_dir>/chorus.db" into @buf of @cap bytes.
 * Returns 0, or -ENAMETOOLONG. */
int brg_store_path(char *buf, size_t cap, const char *state_dir);

/* Opens (creating if missing) the database at @path, sets WAL,
 * synchronous=FULL, busy_timeout, and migrates the schema to
 * BRG_STORE_SCHEMA_VERSION. On failure writes a one-line reason naming the
 * path into @err (@errlen bytes; may be NULL) and returns:
 * -EBADMSG when the file is not a database or is corrupt, -ENOTSUP when it
 * was written by a newer schema, -EACCES/-ENOENT when it cannot be opened
 * or created, -ENOMEM, or -EIO for other SQLite errors. */
int brg_store_open(struct brg_store **out, const char *path,
                   char *err, size_t errlen);

/* Closes @st (NULL is fine). Every committed change is already durable. */
void brg_store_close(struct brg_store *st);

/* Inserts @room or replaces the record with the same name, in one
 * transaction. created_at 0 keeps the stored creation time, or uses the
 * current time for a new room. Sets *@created (may be NULL) to whether the
 * room was new. Returns 0, -EINVAL for a bad name or pin_hash that is not
 * "" or a crypto_pwhash string, or -EIO. */
int brg_store_room_put(struct brg_store *st, const struct brg_room *room,
                       bool *created);

/* Inserts @room only if no room of that name exists (created_at 0 means
 * now). Returns 0, -EEXIST, -EINVAL or -EIO. */
int brg_store_room_insert(struct brg_store *st, const struct brg_room *room);

/* Reads the room @name into @out. Returns 0, -ENOENT, -EINVAL for a bad
 * name, or -EIO (also when the stored row is out of range). */
int brg_store_room_get(struct brg_store *st, const char *name,
                       struct brg_room *out);

/* Deletes the room @name. Returns 0, -ENOENT, -EINVAL or -EIO. */
int brg_store_room_delete(struct brg_store *st, const char *name);

/* Called once per room, in name order. Returning non-zero stops the walk
 * and brg_store_room_list returns that value. The store's mutex is held:
 * do not call back into the same store. */
typedef int (*brg_store_room_cb)(const struct brg_room *room, void *data);

/* Calls @cb for every room. Returns 0, the callback's non-zero value, or
 * -EIO. */
int brg_store_room_list(struct brg_store *st, brg_store_room_cb cb,
                        void *data);

/* Hashes @pin (1..BRG_PIN_MAX bytes) into @out with crypto_pwhash_str at
 * the interactive limits. Returns 0, -EINVAL for an empty or too long PIN,
 * or -ENOMEM when libsodium could not get its memory. */
int brg_store_pin_hash(char out[BRG_PIN_HASH_MAX], const char *pin);

/* True when @pin matches @hash (a brg_store_pin_hash result). False for a
 * wrong PIN, an empty or malformed hash, or an over-long PIN. */
bool brg_store_pin_verify(const char *hash, const char *pin);

#endif /* BRG_STORE_H */
