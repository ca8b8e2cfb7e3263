/*
 * test_integration_overlay.c: chorus-bridge in the peer-to-peer overlay,
 * with real processes on loopback.
 *
 *   - Two bridges: A is the seed of its own overlay (no bootstrap: a
 *     supernode from the start); B is a peer bootstrapped with A's contact
 *     (its public key from GET /v1/overlay, A's overlay port). B logs in
 *     through A; a room created on B is published, and A's DHT stores its
 *     record; deleting it withdraws the record and both bridges carry on;
 *     /metrics shows the overlay series; both shut down cleanly.
 *   - A bridge started with --no-overlay answers GET /v1/overlay with a
 *     503 problem.
 *
 * Finding the room from a client (a lookup through a supernode) is the
 * overlay's own multi-process test (tests/integration/overlay/).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "harness.h"
#include "http_client.h"

enum {
    LOGIN_MS = 20000,           /* a peer's login ladder: UDP probe, TCP, ... */
    STORE_MS = 10000,           /* a room record reaching the supernode */
    METRICS_REFRESH_MS = 1200,  /* the bridge renders /metrics once a second */
    POLL_MS = 100,
};

TestSuite(overlay, .init = ih_setup, .fini = ih_teardown, .timeout = 90);

static void start_bridge(struct ih_bridge *b, const char *const *extra)
{
    int rc = ih_bridge_start(b, extra);

    cr_assert_eq(rc, 0, "the bridge did not start: %s", strerror(-rc));
}

/* GET /v1/overlay; asserts a 200 with a JSON object. */
static json_t *overlay_get(const struct ih_bridge *b)
{
    json_t *j = NULL;
    long st = ih_http(b, "GET", "/v1/overlay", NULL, &j);

    cr_assert_eq(st, 200, "GET /v1/overlay answered %ld", st);
    cr_assert(json_is_object(j), "GET /v1/overlay: no JSON object");
    return j;
}

static const char *str(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));

    return s ? s : "";
}

static long long num(const json_t *j, const char *path_a, const char *path_b)
{
    const json_t *v = json_object_get(j, path_a);

    if (path_b)
        v = json_object_get(v, path_b);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* Polls GET /v1/overlay of @b until @ok(json, arg) holds or @ms passed.
 * Returns the last answer (the caller frees it). */
static json_t *overlay_wait(const struct ih_bridge *b, bool (*ok)(const json_t *, long long),
                            long long arg, int ms)
{
    uint64_t deadline = ih_now_ms() + (uint64_t)ms;
    json_t *j = overlay_get(b);

    while (!ok(j, arg) && ih_now_ms() < deadline) {
        json_decref(j);
        ih_sleep_ms(POLL_MS);
        j = overlay_get(b);
    }
    return j;
}

static bool is_logged_in(const json_t *j, long long unused)
{
    (void)unused;
    return json_is_true(json_object_get(j, "logged_in"));
}

static bool has_records(const json_t *j, long long n)
{
    return num(j, "dht", "records") >= n;
}

static bool publishes(const json_t *j, long long n)
{
    return num(j, "rooms_published", NULL) == n;
}

Test(overlay, peer_bridge_logs_in_through_a_seed_bridge)
{
    static char boot[160];
    static const char *const b_args[] = {"--bootstrap", boot, "--role", "peer", NULL};
    struct ih_bridge a, b;
    char a_contact[160];
    long long a_records;
    json_t *ja, *jb;

    /* A: no bootstrap, role auto: the seed, a supernode from the start. */
    start_bridge(&a, NULL);
    ja = overlay_wait(&a, is_logged_in, 0, LOGIN_MS);
    cr_assert(json_is_true(json_object_get(ja, "logged_in")), "the seed is not logged in");
    cr_expect_str_eq(str(ja, "role"), "supernode");
    cr_expect_str_eq(str(ja, "mode"), "auto");
    cr_expect(json_is_true(json_object_get(ja, "seed")));
    cr_expect_eq(num(ja, "udp_port", NULL), a.overlay_port);
    cr_expect_eq(num(ja, "tcp_port", NULL), a.overlay_port);
    snprintf(boot, sizeof(boot), "%s@127.0.0.1:%u", str(ja, "public_key"), a.overlay_port);
    snprintf(a_contact, sizeof(a_contact), "%s", str(ja, "contact"));
    cr_expect_str_eq(a_contact, boot, "A's contact is not its key @ its overlay address");
    a_records = num(ja, "dht", "records");
    cr_expect_eq(a_records, 0, "A stores records already (it has no rooms)");
    json_decref(ja);

    /* B: a peer that knows only A. */
    start_bridge(&b, b_args);
    jb = overlay_wait(&b, is_logged_in, 0, LOGIN_MS);
    cr_assert(json_is_true(json_object_get(jb, "logged_in")), "B did not log in through A in %d ms",
              LOGIN_MS);
    cr_expect_str_eq(str(jb, "role"), "peer");
    cr_expect_str_eq(str(jb, "mode"), "peer");
    cr_expect(json_is_false(json_object_get(jb, "seed")));
    cr_expect_str_eq(str(jb, "supernode"), a_contact, "B's supernode is not A");
    cr_expect_eq(num(jb, "dht", "records"), 0, "a peer stores no records");
    json_decref(jb);
    ja = overlay_get(&a);
    cr_expect_geq(num(ja, "attached_peers", NULL), 1, "A does not count B as attached");
    json_decref(ja);

    /* A room on B: its record reaches A's DHT. */
    cr_assert_eq(ih_http(&b, "POST", "/v1/rooms", "{\"name\":\"overlay-room\"}", NULL), 201);
    jb = overlay_get(&b);
    cr_expect_eq(num(jb, "rooms_published", NULL), 1);
    json_decref(jb);
    ja = overlay_wait(&a, has_records, a_records + 1, STORE_MS);
    cr_expect_geq(num(ja, "dht", "records"), a_records + 1,
                  "A's DHT did not get B's room record in %d ms", STORE_MS);
    json_decref(ja);

    ih_sleep_ms(METRICS_REFRESH_MS);
    cr_expect_eq(ih_metric(&b, "chorus_overlay_up"), 1);
    cr_expect_eq(ih_metric(&b, "chorus_overlay_logged_in"), 1);
    cr_expect_eq(ih_metric(&b, "chorus_overlay_role"), 0);
    cr_expect_eq(ih_metric(&b, "chorus_overlay_rooms_published"), 1);
    cr_expect_geq(ih_metric(&b, "chorus_overlay_rx_msgs_total"), 1);
    cr_expect_eq(ih_metric(&a, "chorus_overlay_role"), 1);
    cr_expect_geq(ih_metric(&a, "chorus_overlay_dht_records"), 1);
    cr_expect_geq(ih_metric(&a, "chorus_overlay_attached_peers"), 1);

    /* Deleting the room withdraws its record; nothing breaks. */
    cr_assert_eq(ih_http(&b, "DELETE", "/v1/rooms/overlay-room", NULL, NULL), 204);
    jb = overlay_wait(&b, publishes, 0, STORE_MS);
    cr_expect_eq(num(jb, "rooms_published", NULL), 0, "the deleted room is still published");
    cr_expect(json_is_true(json_object_get(jb, "logged_in")));
    json_decref(jb);
    ih_sleep_ms(500);
    json_decref(overlay_get(&a));
    cr_expect(ih_proc_running(&a.proc), "A died; see %s", ih_bridge_log(&a));
    cr_expect(ih_proc_running(&b.proc), "B died; see %s", ih_bridge_log(&b));
    cr_expect(ih_file_contains(ih_bridge_log(&b), "logged in through supernode"),
              "B's log does not say it logged in");

    /* B logs out from A first, then A stops. */
    it_finish(&b);
    it_finish(&a);
}

Test(overlay, disabled_overlay_is_503)
{
    static const char *const args[] = {"--no-overlay", NULL};
    struct ih_bridge b;
    json_t *j = NULL;

    start_bridge(&b, args);
    cr_expect_eq(ih_http(&b, "GET", "/v1/overlay", NULL, &j), 503);
    cr_expect_str_eq(str(j, "detail"), "the overlay is disabled on this bridge (overlay = false)");
    json_decref(j);
    ih_sleep_ms(METRICS_REFRESH_MS);
    cr_expect_eq(ih_metric(&b, "chorus_overlay_up"), 0);
    cr_expect_eq(ih_metric(&b, "chorus_overlay_logged_in"), -1, "overlay series without an overlay");
    it_finish(&b);
}
