/*
 * test_store.c: the SQLite room store (brg_store.h): round trips, update,
 * delete, listing, reopen, durability across a child killed with SIGKILL
 * (and one that _exit()s) without closing, refusal of damaged or foreign
 * files and of newer schemas, and PIN hashing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "brg_store.h"

static char dir[64];
static char db_path[128];
static char err[512];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/brg-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(brg_store_path(db_path, sizeof(db_path), dir), 0);
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static struct brg_store *open_ok(void)
{
    struct brg_store *st = NULL;
    int rc = brg_store_open(&st, db_path, err, sizeof(err));

    cr_assert_eq(rc, 0, "open: %d %s", rc, err);
    return st;
}

static struct brg_room room(const char *name)
{
    struct brg_room r;

    brg_room_defaults(&r);
    snprintf(r.name, sizeof(r.name), "%s", name);
    return r;
}

static void expect_room_eq(const struct brg_room *a, const struct brg_room *b)
{
    cr_expect_str_eq(a->name, b->name);
    cr_expect_eq(a->sample_rate, b->sample_rate);
    cr_expect_eq(a->frame_ms, b->frame_ms);
    cr_expect_eq(a->max_participants, b->max_participants);
    cr_expect_eq(a->talkers, b->talkers);
    cr_expect_eq(a->silence_suppression, b->silence_suppression);
    cr_expect_eq(a->comfort_noise, b->comfort_noise);
    cr_expect_str_eq(a->pin_hash, b->pin_hash);
    cr_expect_eq(a->created_at, b->created_at);
}

Test(store, path)
{
    char small[8];

    cr_expect_str_eq(db_path + strlen(dir), "/chorus.db");
    cr_expect_eq(brg_store_path(small, sizeof(small), "/var/lib"),
                 -ENAMETOOLONG);
}

Test(store, round_trip)
{
    struct brg_store *st = open_ok();
    struct brg_room r = room("standup"), got;
    bool created = false;
    int64_t before = (int64_t)time(NULL);

    r.sample_rate = 16000;
    r.frame_ms = 10;
    r.max_participants = 25;
    r.talkers = 4;
    r.silence_suppression = false;
    r.comfort_noise = true;
    cr_assert_eq(brg_store_room_put(st, &r, &created), 0);
    cr_expect(created);
    cr_assert_eq(brg_store_room_get(st, "standup", &got), 0);
    cr_expect_geq(got.created_at, before);
    cr_expect_leq(got.created_at, (int64_t)time(NULL));
    r.created_at = got.created_at;
    expect_room_eq(&got, &r);

    /* extremes of every field survive */
    r = room("x");
    r.sample_rate = UINT32_MAX;
    r.frame_ms = 0;
    r.max_participants = UINT32_MAX;
    r.talkers = 0;
    r.created_at = INT64_MAX;
    cr_assert_eq(brg_store_room_put(st, &r, NULL), 0);
    cr_assert_eq(brg_store_room_get(st, "x", &got), 0);
    expect_room_eq(&got, &r);
    cr_expect_eq(brg_store_room_get(st, "nope", &got), -ENOENT);
    brg_store_close(st);
}

Test(store, update)
{
    struct brg_store *st = open_ok();
    struct brg_room r = room("team.a-1_~"), got;
    bool created = true;

    r.created_at = 1700000000;
    cr_assert_eq(brg_store_room_put(st, &r, NULL), 0);
    r.talkers = 5;
    r.comfort_noise = false;
    r.created_at = 0;           /* keep the stored creation time */
    cr_assert_eq(brg_store_room_put(st, &r, &created), 0);
    cr_expect_not(created);
    cr_assert_eq(brg_store_room_get(st, r.name, &got), 0);
    cr_expect_eq(got.talkers, 5u);
    cr_expect_not(got.comfort_noise);
    cr_expect_eq(got.created_at, 1700000000);
    r.created_at = 1800000000;  /* explicit value replaces it */
    cr_assert_eq(brg_store_room_put(st, &r, NULL), 0);
    cr_assert_eq(brg_store_room_get(st, r.name, &got), 0);
    cr_expect_eq(got.created_at, 1800000000);
    brg_store_close(st);
}

Test(store, insert_only_if_missing)
{
    struct brg_store *st = open_ok();
    struct brg_room r = room("demo"), got;

    cr_expect_eq(brg_store_room_insert(st, &r), 0);
    r.talkers = 9;
    cr_expect_eq(brg_store_room_insert(st, &r), -EEXIST);
    cr_assert_eq(brg_store_room_get(st, "demo", &got), 0);
    cr_expect_eq(got.talkers, 3u);
    /* the store still works after the refused insert's rollback */
    cr_expect_eq(brg_store_room_put(st, &r, NULL), 0);
    brg_store_close(st);
}

Test(store, delete_and_reopen)
{
    struct brg_store *st = open_ok();
    struct brg_room a = room("a"), b = room("b"), got;

    cr_assert_eq(brg_store_room_put(st, &a, NULL), 0);
    cr_assert_eq(brg_store_room_put(st, &b, NULL), 0);
    cr_expect_eq(brg_store_room_delete(st, "a"), 0);
    cr_expect_eq(brg_store_room_delete(st, "a"), -ENOENT);
    cr_expect_eq(brg_store_room_get(st, "a", &got), -ENOENT);
    brg_store_close(st);

    st = open_ok();
    cr_expect_eq(brg_store_room_get(st, "a", &got), -ENOENT);
    cr_expect_eq(brg_store_room_get(st, "b", &got), 0);
    brg_store_close(st);
}

Test(store, reopen_keeps_data)
{
    struct brg_store *st = open_ok();
    struct brg_room r = room("persist"), got;

    r.max_participants = 12;
    cr_assert_eq(brg_store_room_put(st, &r, NULL), 0);
    brg_store_close(st);
    st = open_ok();
    cr_assert_eq(brg_store_room_get(st, "persist", &got), 0);
    cr_expect_eq(got.max_participants, 12u);
    brg_store_close(st);
    brg_store_close(NULL);
}

struct names {
    char list[8][BRG_ROOM_NAME_MAX + 1];
    int n;
    int stop_after;
};

static int collect(const struct brg_room *r, void *data)
{
    struct names *n = data;

    snprintf(n->list[n->n++], sizeof(n->list[0]), "%s", r->name);
    return n->n == n->stop_after ? 42 : 0;
}

Test(store, list_in_name_order)
{
    struct brg_store *st = open_ok();
    static const char *const in[] = { "m", "a", "z", "b" };
    struct names n = { .stop_after = -1 };

    cr_expect_eq(brg_store_room_list(st, collect, &n), 0);
    cr_expect_eq(n.n, 0);
    for (size_t i = 0; i < 4; i++) {
        struct brg_room r = room(in[i]);

        cr_assert_eq(brg_store_room_put(st, &r, NULL), 0);
    }
    cr_expect_eq(brg_store_room_list(st, collect, &n), 0);
    cr_assert_eq(n.n, 4);
    cr_expect_str_eq(n.list[0], "a");
    cr_expect_str_eq(n.list[1], "b");
    cr_expect_str_eq(n.list[2], "m");
    cr_expect_str_eq(n.list[3], "z");

    n = (struct names){ .stop_after = 2 };
    cr_expect_eq(brg_store_room_list(st, collect, &n), 42);
    cr_expect_eq(n.n, 2);
    /* the walk was reset: a new one starts from the beginning */
    n = (struct names){ .stop_after = -1 };
    cr_expect_eq(brg_store_room_list(st, collect, &n), 0);
    cr_expect_eq(n.n, 4);
    brg_store_close(st);
}

Test(store, names_validated)
{
    struct brg_store *st = open_ok();
    struct brg_room r, got;
    char long_name[80];

    static const char *const bad[] = { "", "a/b", "a b", "../x", "%2e",
                                       "caf\xc3\xa9", "a?b", "a#b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = room(bad[i]);
        cr_expect_eq(brg_store_room_put(st, &r, NULL), -EINVAL, "'%s'", bad[i]);
        cr_expect_eq(brg_store_room_get(st, bad[i], &got), -EINVAL);
        cr_expect_eq(brg_store_room_delete(st, bad[i]), -EINVAL);
        cr_expect_not(brg_room_name_valid(bad[i]));
    }
    memset(long_name, 'a', sizeof(long_name));
    long_name[BRG_ROOM_NAME_MAX] = '\0';
    cr_expect(brg_room_name_valid(long_name));
    long_name[BRG_ROOM_NAME_MAX] = 'a';
    long_name[BRG_ROOM_NAME_MAX + 1] = '\0';
    cr_expect_not(brg_room_name_valid(long_name));
    cr_expect_eq(brg_store_room_get(st, long_name, &got), -EINVAL);
    cr_expect_not(brg_room_name_valid(NULL));

    r = room("ok");
    snprintf(r.pin_hash, sizeof(r.pin_hash), "1234");   /* a PIN, not a hash */
    cr_expect_eq(brg_store_room_put(st, &r, NULL), -EINVAL);
    r = room("ok");
    r.created_at = -1;
    cr_expect_eq(brg_store_room_put(st, &r, NULL), -EINVAL);
    brg_store_close(st);
}

Test(store, wal_mode_on_disk)
{
    struct brg_store *st = open_ok();
    sqlite3 *db;
    sqlite3_stmt *s;

    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(s, 0), BRG_STORE_SCHEMA_VERSION);
    sqlite3_finalize(s);
    sqlite3_close(db);
    brg_store_close(st);
}

/* ------------------------------------------------------- durability -- */

enum child_end { END_SIGKILL, END_EXIT };

/* Forks a child that opens the store, runs @op on room @name and dies
 * without closing the store; returns after checking how it died. */
static void child_then_die(const char *name, bool del, enum child_end how)
{
    pid_t pid = fork();
    int status;

    cr_assert(pid >= 0);
    if (pid == 0) {
        struct brg_store *st;
        struct brg_room r = room(name);

        if (brg_store_open(&st, db_path, NULL, 0) != 0)
            _exit(3);
        r.talkers = 7;
        if (del ? brg_store_room_delete(st, name) != 0
                : brg_store_room_put(st, &r, NULL) != 0)
            _exit(4);
        /* acknowledged: now die without brg_store_close */
        if (how == END_SIGKILL)
            raise(SIGKILL);
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    if (how == END_SIGKILL)
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "child status %x", status);
    else
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %x", status);
}

Test(store, acknowledged_put_survives_sigkill)
{
    struct brg_store *st;
    struct brg_room got;

    child_then_die("killed", false, END_SIGKILL);
    st = open_ok();
    cr_assert_eq(brg_store_room_get(st, "killed", &got), 0);
    cr_expect_eq(got.talkers, 7u);
    brg_store_close(st);
}

Test(store, acknowledged_put_survives_exit_without_close)
{
    struct brg_store *st;
    struct brg_room got;

    child_then_die("exited", false, END_EXIT);
    st = open_ok();
    cr_expect_eq(brg_store_room_get(st, "exited", &got), 0);
    brg_store_close(st);
}

Test(store, deleted_room_stays_deleted_after_sigkill)
{
    struct brg_store *st = open_ok();
    struct brg_room r = room("gone"), got;

    cr_assert_eq(brg_store_room_put(st, &r, NULL), 0);
    brg_store_close(st);
    child_then_die("gone", true, END_SIGKILL);
    st = open_ok();
    cr_expect_eq(brg_store_room_get(st, "gone", &got), -ENOENT);
    brg_store_close(st);
}

/* The parent keeps its handle open while a child writes and is killed:
 * the parent sees the child's row (two processes, one WAL). */
Test(store, concurrent_process_sees_killed_writer)
{
    struct brg_store *st = open_ok();
    struct brg_room got;

    child_then_die("shared", false, END_SIGKILL);
    cr_expect_eq(brg_store_room_get(st, "shared", &got), 0);
    brg_store_close(st);
}

/* --------------------------------------------------- damaged files -- */

static void write_garbage(const char *path, const char *text, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0600);

    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, text, strlen(text), at), (ssize_t)strlen(text));
    close(fd);
}

Test(store, garbage_file_is_refused)
{
    struct brg_store *st = (struct brg_store *)1;
    char big[4096];
    int rc;

    memset(big, 'g', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_garbage(db_path, big, 0);
    rc = brg_store_open(&st, db_path, err, sizeof(err));
    cr_expect_eq(rc, -EBADMSG, "rc %d: %s", rc, err);
    cr_expect_null(st);
    cr_expect(strstr(err, db_path), "%s", err);
    cr_expect(strstr(err, "not a Chorus database, or corrupt"), "%s", err);
}

Test(store, short_garbage_file_is_refused)
{
    struct brg_store *st;
    int rc;

    write_garbage(db_path, "hello, this is not sqlite\n", 0);
    rc = brg_store_open(&st, db_path, err, sizeof(err));
    cr_expect_eq(rc, -EBADMSG, "rc %d: %s", rc, err);
}

Test(store, corrupt_page_is_refused)
{
    struct brg_store *st = open_ok();
    struct brg_room r;
    char junk[2048];
    int rc;

    for (int i = 0; i < 50; i++) {
        char name[16];

        snprintf(name, sizeof(name), "room%02d", i);
        r = room(name);
        cr_assert_eq(brg_store_room_put(st, &r, NULL), 0);
    }
    brg_store_close(st);        /* checkpoints the WAL into the file */
    memset(junk, 0xa5, sizeof(junk) - 1);
    junk[sizeof(junk) - 1] = '\0';
    write_garbage(db_path, junk, 4096 + 100);   /* inside page 2 */
    rc = brg_store_open(&st, db_path, err, sizeof(err));
    cr_expect_eq(rc, -EBADMSG, "rc %d: %s", rc, err);
    cr_expect(strstr(err, "corrupt"), "%s", err);
}

Test(store, newer_schema_is_refused)
{
    struct brg_store *st = open_ok();
    sqlite3 *db;
    int rc;

    brg_store_close(st);
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    rc = brg_store_open(&st, db_path, err, sizeof(err));
    cr_expect_eq(rc, -ENOTSUP, "rc %d: %s", rc, err);
    cr_expect(strstr(err, "schema version 99"), "%s", err);
}

Test(store, damaged_row_is_an_error_not_a_crash)
{
    struct brg_store *st = open_ok();
    struct brg_room got;
    sqlite3 *db;

    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "INSERT INTO rooms VALUES ('bad', -5, 20, 0, "
                              "3, 1, 1, '', 0); INSERT INTO rooms VALUES "
                              "('txt', 'x', 20, 0, 3, 1, 1, '', 0)",
                              NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_expect_eq(brg_store_room_get(st, "bad", &got), -EIO);
    cr_expect_eq(brg_store_room_get(st, "txt", &got), -EIO);
    brg_store_close(st);
}

Test(store, missing_directory)
{
    struct brg_store *st;
    int rc = brg_store_open(&st, "/nonexistent-dir/x/chorus.db", err,
                            sizeof(err));

    cr_expect_lt(rc, 0);
    cr_expect(rc == -ENOENT || rc == -EIO, "rc %d", rc);
    cr_expect(strstr(err, "/nonexistent-dir/x/chorus.db"), "%s", err);
}

/* ------------------------------------------------------------ threads -- */

struct writer {
    struct brg_store *st;
    int id;
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;

    for (int i = 0; i < 20; i++) {
        char name[32];
        struct brg_room r;

        snprintf(name, sizeof(name), "t%d-%d", w->id, i);
        r = room(name);
        if (brg_store_room_put(w->st, &r, NULL) != 0)
            return (void *)1;
    }
    return NULL;
}

static int count_cb(const struct brg_room *r, void *data)
{
    (void)r;
    (*(int *)data)++;
    return 0;
}

Test(store, threads_share_a_handle)
{
    struct brg_store *st = open_ok();
    struct writer w[3];
    pthread_t t[3];
    int n = 0;

    for (int i = 0; i < 3; i++) {
        w[i] = (struct writer){ st, i };
        pthread_create(&t[i], NULL, writer_thread, &w[i]);
    }
    for (int i = 0; i < 3; i++) {
        void *res;

        pthread_join(t[i], &res);
        cr_expect_null(res);
    }
    cr_expect_eq(brg_store_room_list(st, count_cb, &n), 0);
    cr_expect_eq(n, 60);
    brg_store_close(st);
}

/* --------------------------------------------------------------- PINs -- */

Test(store, pin_hash_and_verify)
{
    char hash[BRG_PIN_HASH_MAX], hash2[BRG_PIN_HASH_MAX];
    struct brg_store *st = open_ok();
    struct brg_room r = room("secret"), got;

    cr_assert_eq(brg_store_pin_hash(hash, "1234"), 0);
    cr_expect_eq(strncmp(hash, "$argon2id$", 10), 0, "%s", hash);
    cr_expect_null(strstr(hash, "1234$"));
    cr_expect(brg_store_pin_verify(hash, "1234"));
    cr_expect_not(brg_store_pin_verify(hash, "1235"));
    cr_expect_not(brg_store_pin_verify(hash, ""));
    cr_expect_not(brg_store_pin_verify(hash, "12345"));
    /* salted: the same PIN hashes differently */
    cr_assert_eq(brg_store_pin_hash(hash2, "1234"), 0);
    cr_expect_str_neq(hash, hash2);
    cr_expect(brg_store_pin_verify(hash2, "1234"));

    /* stored and read back, still verifies */
    snprintf(r.pin_hash, sizeof(r.pin_hash), "%s", hash);
    cr_assert_eq(brg_store_room_put(st, &r, NULL), 0);
    cr_assert_eq(brg_store_room_get(st, "secret", &got), 0);
    cr_expect(brg_store_pin_verify(got.pin_hash, "1234"));
    brg_store_close(st);
}

Test(store, pin_refusals)
{
    char hash[BRG_PIN_HASH_MAX], long_pin[BRG_PIN_MAX + 2];

    cr_expect_eq(brg_store_pin_hash(hash, ""), -EINVAL);
    cr_expect_str_eq(hash, "");
    cr_expect_eq(brg_store_pin_hash(hash, NULL), -EINVAL);
    memset(long_pin, '9', sizeof(long_pin) - 1);
    long_pin[sizeof(long_pin) - 1] = '\0';
    cr_expect_eq(brg_store_pin_hash(hash, long_pin), -EINVAL);
    cr_expect_not(brg_store_pin_verify("", "1234"));
    cr_expect_not(brg_store_pin_verify("1234", "1234"));
    cr_expect_not(brg_store_pin_verify("$argon2id$garbage", "1234"));
    cr_expect_not(brg_store_pin_verify(NULL, "1234"));
    cr_assert_eq(brg_store_pin_hash(hash, "0000"), 0);
    cr_expect_not(brg_store_pin_verify(hash, NULL));
    cr_expect_not(brg_store_pin_verify(hash, long_pin));
}
