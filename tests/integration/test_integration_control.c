/*
 * test_integration_control.c: the bridge's control surface with real
 * processes on loopback: rooms surviving kill -9, the REST API over the
 * real daemon (authentication, errors, every documented route, metrics),
 * room PINs, and a graceful shutdown on SIGTERM.
 *
 * Where clients take part, their recordings are checked with Goertzel
 * levels too, so a case passes only when audio really flowed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "harness.h"
#include "http_client.h"

#ifndef CHORUS_OPENAPI_PATH
#error "CHORUS_OPENAPI_PATH must name docs/openapi.json"
#endif

enum {
    WAIT_JOIN_MS = 8000,
    CLIENT_SLACK_MS = 10000,
    REFUSED_MS = 5000,          /* a refused client exits within this */
    METRICS_REFRESH_MS = 1200,  /* the bridge renders /metrics once a second */
    SHUTDOWN_MS = 5000,         /* SIGTERM to exit */
    BIG_BODY = 70000,           /* above the API's 64 KiB limit */
};

TestSuite(control, .init = ih_setup, .fini = ih_teardown, .timeout = 90);

static void start_bridge(struct ih_bridge *b)
{
    int rc = ih_bridge_start(b, NULL);

    cr_assert_eq(rc, 0, "the bridge did not start: %s", strerror(-rc));
}

static void create_room(const struct ih_bridge *b, const char *body)
{
    long st = ih_http(b, "POST", "/v1/rooms", body, NULL);

    cr_assert_eq(st, 201, "POST /v1/rooms %s: %ld", body, st);
}

/* Two clients, 440 and 660 Hz (the second over TCP), talking in a room. */
struct pair {
    char names[2][32];
    struct ih_client c[2];
    struct ih_proc p[2];
    double dur;
};

/* Starts the pair in @room with @pin for @dur seconds; @tag prefixes the
 * client names. */
static void pair_start(struct pair *pr, const struct ih_bridge *b, const char *room,
                       const char *pin, double dur, const char *tag)
{
    memset(pr, 0, sizeof(*pr));
    pr->dur = dur;
    for (int i = 0; i < 2; i++) {
        snprintf(pr->names[i], sizeof(pr->names[i]), i == 0 ? "%s440" : "%s660tcp", tag);
        pr->c[i] = (struct ih_client){.name = pr->names[i], .room = room,
                                      .tone_hz = i == 0 ? 440 : 660, .duration_s = dur,
                                      .pin = pin, .tcp = i == 1, .expect_audio = true};
        cr_assert_eq(ih_client_spawn(&pr->p[i], b, &pr->c[i]), 0);
    }
}

/* Waits for the pair; checks that each exited 0 and heard the other (and
 * not itself) from IT_SKIP_MS to 500 ms before its end. */
static void pair_finish(struct pair *pr)
{
    struct ih_proc *ps[2] = {&pr->p[0], &pr->p[1]};
    uint32_t end = (uint32_t)(pr->dur * 1000) - 500;
    struct ta_pcm pcm;

    ih_procs_wait(ps, 2, (int)(pr->dur * 1000) + CLIENT_SLACK_MS);
    for (int i = 0; i < 2; i++) {
        const char *who = pr->names[i];

        it_expect_exit(&pr->p[i], 0, NULL);
        it_load_client(&pcm, who, end);
        it_expect_tone(&pcm, who, pr->c[1 - i].tone_hz, IT_SKIP_MS, end, IT_TONE_DB, IT_TOL_DB);
        it_expect_below(&pcm, who, pr->c[i].tone_hz, IT_SKIP_MS, end,
                        IT_TONE_DB - IT_OWN_BELOW_DB);
        ta_pcm_free(&pcm);
    }
}

/* ---- 4: rooms survive kill -9 ---- */

Test(control, rooms_survive_kill9)
{
    struct ih_bridge b;
    json_t *before = NULL, *after = NULL, *list = NULL, *e;
    char token[sizeof(b.token)];
    struct ih_proc refused;
    struct ih_client nopin = {.name = "nopin", .room = "keep", .tone_hz = 880, .duration_s = 2};
    struct pair pr;
    size_t i;
    long st;

    start_bridge(&b);
    create_room(&b, "{\"name\":\"keep\",\"pin\":\"4321\",\"talkers\":5,\"max_participants\":7,"
                    "\"sample_rate\":48000,\"frame_ms\":20}");
    create_room(&b, "{\"name\":\"gone\"}");
    cr_assert_eq(ih_http(&b, "PATCH", "/v1/rooms/keep", "{\"talkers\":6}", NULL), 200);
    cr_assert_eq(ih_http(&b, "DELETE", "/v1/rooms/gone", NULL, NULL), 204);
    cr_assert_eq(ih_http(&b, "GET", "/v1/rooms/keep", NULL, &before), 200);
    memcpy(token, b.token, sizeof(token));

    cr_assert_eq(ih_proc_signal(&b.proc, SIGKILL), 0);
    cr_assert_eq(ih_proc_wait(&b.proc, 5000), 0);
    cr_assert_eq(ih_proc_exit_code(&b.proc), 128 + SIGKILL);
    cr_assert_eq(ih_bridge_restart(&b), 0, "the bridge did not restart on its state; see %s",
                 ih_bridge_log(&b));
    cr_expect_str_eq(b.token, token, "the API token changed across the restart");

    st = ih_http(&b, "GET", "/v1/rooms/keep", NULL, &after);
    cr_assert_eq(st, 200, "GET /v1/rooms/keep after the restart: %ld", st);
    static const char *const fields[] = {"name", "sample_rate", "frame_ms", "max_participants",
                                         "talkers", "silence_suppression", "comfort_noise",
                                         "pin_required", "created_at"};
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        cr_expect(json_equal(json_object_get(before, fields[i]), json_object_get(after, fields[i])),
                  "room field %s changed across kill -9", fields[i]);
    cr_expect_eq(json_integer_value(json_object_get(after, "talkers")), 6);
    cr_expect_eq(json_integer_value(json_object_get(after, "max_participants")), 7);
    cr_expect(json_is_true(json_object_get(after, "pin_required")), "the PIN was lost");
    cr_expect_eq(json_integer_value(json_object_get(after, "participants")), 0);
    cr_expect_eq(ih_http(&b, "GET", "/v1/rooms/gone", NULL, NULL), 404,
                 "a room deleted before kill -9 came back");
    cr_assert_eq(ih_http(&b, "GET", "/v1/rooms", NULL, &list), 200);
    json_t *rooms = json_is_array(list) ? list : json_object_get(list, "rooms");
    cr_expect_eq(json_array_size(rooms), 1, "the restarted bridge lists %zu rooms",
                 json_array_size(rooms));
    json_array_foreach(rooms, i, e)
        cr_expect_str_eq(json_string_value(json_object_get(e, "name")), "keep");
    json_decref(before);
    json_decref(after);
    json_decref(list);

    /* The restored room is live in the mixer and still wants its PIN. */
    cr_assert_eq(ih_client_spawn(&refused, &b, &nopin), 0);
    pair_start(&pr, &b, "keep", "4321", 2.5, "k");
    ih_proc_wait(&refused, REFUSED_MS);
    pair_finish(&pr);
    it_expect_exit(&refused, 3, "this room needs a PIN");
    it_finish(&b);
}

/* ---- 5: the REST API over the real bridge ---- */

static void expect_problem(const struct http_resp *r, long status, const char *what)
{
    char ct[128];
    json_t *j = http_json(r);

    cr_expect_eq(r->status, status, "%s: status %ld, want %ld", what, r->status, status);
    cr_expect(http_header(r, "Content-Type", ct, sizeof(ct)) &&
                  strncmp(ct, "application/problem+json", 24) == 0,
              "%s: Content-Type is %s, want application/problem+json", what,
              http_header(r, "Content-Type", ct, sizeof(ct)) ? ct : "(none)");
    cr_expect_eq(json_integer_value(json_object_get(j, "status")), status,
                 "%s: the problem's status field", what);
    json_decref(j);
}

static void request(const struct ih_bridge *b, const char *method, const char *path,
                    const char *token, const char *body, size_t body_len, long timeout_ms,
                    struct http_resp *out)
{
    char url[512];
    struct http_req req = {.method = method, .url = url, .token = token, .body = body,
                           .body_len = body_len, .timeout_ms = timeout_ms,
                           .content_type = body ? "application/json" : NULL};

    snprintf(url, sizeof(url), "%s%s", b->url, path);
    http_do(&req, out);
}

static void api_errors(const struct ih_bridge *b)
{
    struct http_resp r;
    char hdr[256];
    char *big;

    request(b, "GET", "/v1/rooms", NULL, NULL, 0, 0, &r);
    cr_expect_eq(r.status, 401, "no token: %ld", r.status);
    cr_expect(http_header(&r, "WWW-Authenticate", hdr, sizeof(hdr)) && strstr(hdr, "Bearer"),
              "401 without a Bearer challenge");
    http_resp_free(&r);
    request(b, "GET", "/v1/rooms", "not-the-token-0123456789", NULL, 0, 0, &r);
    cr_expect_eq(r.status, 401, "wrong token: %ld", r.status);
    cr_expect(http_header(&r, "WWW-Authenticate", hdr, sizeof(hdr)) &&
                  strstr(hdr, "invalid_token"),
              "a wrong token's challenge lacks invalid_token");
    http_resp_free(&r);

    request(b, "POST", "/v1/rooms", b->token, "{\"name\":", 8, 0, &r);
    expect_problem(&r, 400, "bad JSON");
    http_resp_free(&r);
    request(b, "GET", "/v1/rooms/no-such-room", b->token, NULL, 0, 0, &r);
    expect_problem(&r, 404, "unknown room");
    http_resp_free(&r);
    request(b, "GET", "/v1/rooms/no-such-room/participants/7", b->token, NULL, 0, 0, &r);
    expect_problem(&r, 404, "participant of an unknown room");
    http_resp_free(&r);

    big = malloc(BIG_BODY + 1);
    cr_assert_not_null(big);
    memset(big, ' ', BIG_BODY);
    memcpy(big, "{\"name\":\"big\"", 13);
    big[BIG_BODY - 1] = '}';
    big[BIG_BODY] = '\0';
    request(b, "POST", "/v1/rooms", b->token, big, BIG_BODY, 0, &r);
    expect_problem(&r, 413, "oversized body");
    http_resp_free(&r);
    free(big);
    cr_expect_eq(ih_http(b, "GET", "/v1/rooms/big", NULL, NULL), 404,
                 "the oversized request created its room");
}

/* Replaces {room} and {id} in @tmpl. */
static void fill_path(char *out, size_t size, const char *tmpl, const char *room, uint32_t id)
{
    size_t n = 0;

    for (const char *p = tmpl; *p && n + 1 < size;) {
        int w = 0;

        if (strncmp(p, "{room}", 6) == 0) {
            w = snprintf(out + n, size - n, "%s", room);
            p += 6;
        } else if (strncmp(p, "{id}", 4) == 0) {
            w = snprintf(out + n, size - n, "%u", id);
            p += 4;
        } else {
            out[n] = *p++;
            w = 1;
        }
        n += (size_t)w < size - n ? (size_t)w : size - n - 1;
    }
    out[n] = '\0';
}

/* Calls every operation of docs/openapi.json whose method is (or, with
 * @deletes false, is not) DELETE, on room @room and participant @id;
 * expects an answer other than 404 and 405. Returns how many it called. */
static unsigned walk_routes(const struct ih_bridge *b, json_t *doc, bool deletes,
                            const char *room, uint32_t id)
{
    static const char *const methods[] = {"get", "post", "patch", "put", "delete"};
    json_t *paths = json_object_get(doc, "paths");
    const char *tmpl;
    json_t *item;
    unsigned called = 0;
    /* Deepest paths first, so a participant goes before its room. */
    const char *order[64];
    size_t n = 0;

    json_object_foreach(paths, tmpl, item) {
        if (n < 64)
            order[n++] = tmpl;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = i + 1; k < n; k++) {
            if (strlen(order[k]) > strlen(order[i])) {
                const char *t = order[i];
                order[i] = order[k];
                order[k] = t;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        item = json_object_get(paths, order[i]);
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            char path[256], upper[8];
            bool is_delete = strcmp(methods[m], "delete") == 0;
            bool events = strstr(order[i], "/events") != NULL;
            struct http_resp r;

            if (!json_object_get(item, methods[m]) || is_delete != deletes)
                continue;
            for (size_t c = 0; c <= strlen(methods[m]); c++)
                upper[c] = (char)(methods[m][c] >= 'a' ? methods[m][c] - 32 : methods[m][c]);
            fill_path(path, sizeof(path), order[i], room, id);
            bool body = strcmp(upper, "POST") == 0 || strcmp(upper, "PATCH") == 0 ||
                        strcmp(upper, "PUT") == 0;
            /* The event stream never ends by itself: a short timeout. */
            request(b, upper, path, b->token, body ? "{}" : NULL, body ? 2 : 0,
                    events ? 700 : 0, &r);
            it_note("route %s %s: %ld", upper, path, r.status);
            cr_expect(r.status != 0 && r.status != 404 && r.status != 405,
                      "%s %s (documented) answered %ld", upper, path, r.status);
            http_resp_free(&r);
            called++;
        }
    }
    return called;
}

Test(control, rest_api)
{
    struct ih_bridge b;
    json_t *doc, *j = NULL;
    json_error_t jerr;
    char label[64];
    uint32_t id;
    unsigned calls;

    start_bridge(&b);
    api_errors(&b);

    create_room(&b, "{\"name\":\"api\"}");
    cr_assert_eq(ih_http(&b, "POST", "/v1/rooms/api/participants", "{\"codec\":\"pcmu\"}", &j), 201);
    id = (uint32_t)json_integer_value(json_object_get(j, "id"));
    cr_expect_str_eq(json_string_value(json_object_get(j, "codec")), "pcmu");
    json_decref(j);
    cr_assert_neq(id, 0);

    doc = json_load_file(CHORUS_OPENAPI_PATH, 0, &jerr);
    cr_assert_not_null(doc, "%s: %s", CHORUS_OPENAPI_PATH, jerr.text);
    calls = walk_routes(&b, doc, false, "api", id);
    cr_expect_geq(calls, 10, "only %u documented non-DELETE operations", calls);

    /* The walk's POST {} added a second plain leg. */
    ih_sleep_ms(METRICS_REFRESH_MS);
    cr_expect_eq(ih_metric(&b, "chorus_rooms"), 1);
    cr_expect_eq(ih_metric(&b, "chorus_legs"), 2);
    for (unsigned k = 0; k < 4; k++) {
        static const int codes[] = {401, 400, 404, 413};
        snprintf(label, sizeof(label), "chorus_api_requests_total{status=\"%d\"}", codes[k]);
        cr_expect_geq(ih_metric(&b, label), codes[k] == 401 ? 2 : 1, "%s is %.0f", label,
                      ih_metric(&b, label));
    }
    snprintf(label, sizeof(label), "chorus_api_requests_total{status=\"%d\"}", 200);
    cr_expect_geq(ih_metric(&b, label), 5, "%s", label);

    calls = walk_routes(&b, doc, true, "api", id);
    cr_expect_geq(calls, 2, "only %u documented DELETE operations", calls);
    json_decref(doc);
    cr_expect_eq(ih_http(&b, "GET", "/v1/rooms/api", NULL, NULL), 404, "the room outlived DELETE");
    ih_sleep_ms(METRICS_REFRESH_MS);
    cr_expect_eq(ih_metric(&b, "chorus_rooms"), 0);
    cr_expect_eq(ih_metric(&b, "chorus_legs"), 0);
    cr_expect(ih_proc_running(&b.proc), "the bridge died; see %s", ih_bridge_log(&b));
    it_finish(&b);
}

/* ---- 7: room PIN ---- */

Test(control, pin)
{
    struct ih_bridge b;
    struct ih_client bad[2] = {
        {.name = "nopin880", .room = "locked", .tone_hz = 880, .duration_s = 3},
        {.name = "wrong880", .room = "locked", .tone_hz = 880, .duration_s = 3, .pin = "1111"},
    };
    struct ih_proc p[2];
    struct ih_proc *ps[2] = {&p[0], &p[1]};
    static const char *const why[2] = {"this room needs a PIN", "wrong PIN"};
    struct pair pr;
    json_t *j = NULL;

    start_bridge(&b);
    create_room(&b, "{\"name\":\"locked\",\"pin\":\"4321\"}");
    cr_assert_eq(ih_http(&b, "GET", "/v1/rooms/locked", NULL, &j), 200);
    cr_expect(json_is_true(json_object_get(j, "pin_required")));
    cr_expect_null(json_object_get(j, "pin"), "the PIN is readable");
    json_decref(j);

    for (int i = 0; i < 2; i++)
        cr_assert_eq(ih_client_spawn(&p[i], &b, &bad[i]), 0);
    /* The refused ones (880 Hz) must not be heard by the admitted pair. */
    pair_start(&pr, &b, "locked", "4321", 3.0, "p");
    ih_procs_wait(ps, 2, REFUSED_MS);
    for (int i = 0; i < 2; i++) {
        it_expect_exit(&p[i], 3, why[i]);
        it_expect_exit(&p[i], 3, "refused to join room locked");
        cr_expect_lt(ih_proc_runtime_ms(&p[i]), 2000, "%s was refused only after %llu ms",
                     bad[i].name, (unsigned long long)ih_proc_runtime_ms(&p[i]));
    }
    cr_expect_eq(ih_wait_participants(&b, "locked", 2, WAIT_JOIN_MS), 0,
                 "the room lists %d participants, want the 2 with the PIN",
                 ih_participant_count(&b, "locked"));
    pair_finish(&pr);
    for (int i = 0; i < 2; i++) {
        struct ta_pcm pcm;

        it_load_client(&pcm, pr.names[i], 2500);
        it_expect_below(&pcm, pr.names[i], 880, IT_SKIP_MS, 2500, IT_TONE_DB - IT_OWN_BELOW_DB);
        ta_pcm_free(&pcm);
    }
    ih_sleep_ms(METRICS_REFRESH_MS);
    cr_expect_geq(ih_metric(&b, "chorus_handshakes_failed_total"), 2);
    it_finish(&b);
}

/* ---- 8: SIGTERM ---- */

Test(control, sigterm_with_clients)
{
    struct ih_bridge b;
    struct ih_client c[2] = {
        {.name = "s440", .room = "bye", .tone_hz = 440, .duration_s = 20},
        {.name = "s660tcp", .room = "bye", .tone_hz = 660, .duration_s = 20, .tcp = true},
    };
    struct ih_proc p[2];
    struct ih_proc *ps[2] = {&p[0], &p[1]};
    struct http_resp r;
    uint64_t t0, t_term;

    start_bridge(&b);
    create_room(&b, "{\"name\":\"bye\"}");
    for (int i = 0; i < 2; i++)
        cr_assert_eq(ih_client_spawn(&p[i], &b, &c[i]), 0);
    cr_assert_eq(ih_wait_participants(&b, "bye", 2, WAIT_JOIN_MS), 0);
    t0 = ih_now_ms();
    ih_sleep_until(t0 + 1800);
    t_term = ih_now_ms();
    cr_assert_eq(ih_proc_signal(&b.proc, SIGTERM), 0);

    cr_expect_eq(ih_proc_wait(&b.proc, SHUTDOWN_MS), 0, "the bridge ignored SIGTERM for %d ms",
                 SHUTDOWN_MS);
    it_expect_exit(&b.proc, 0, "shutting down (SIGTERM)");
    cr_expect(!ih_file_contains(b.proc.err_path, "handles still open"),
              "the bridge closed its loop with handles still open; see %s", b.proc.err_path);
    ih_procs_wait(ps, 2, 3000);
    for (int i = 0; i < 2; i++) {
        struct ta_pcm pcm;

        it_expect_exit(&p[i], 5, "the bridge ended the leg: bridge shutting down");
        cr_expect_lt(p[i].end_ms, t_term + 3000, "%s left %llu ms after SIGTERM", c[i].name,
                     (unsigned long long)(p[i].end_ms - t_term));
        /* They were really talking until then. */
        it_load_client(&pcm, c[i].name, 1500);
        it_expect_tone(&pcm, c[i].name, c[1 - i].tone_hz, IT_SKIP_MS, 1500, IT_TONE_DB, IT_TOL_DB);
        ta_pcm_free(&pcm);
    }
    request(&b, "GET", "/v1/health", NULL, NULL, 0, 1000, &r);
    cr_expect_neq(r.curl_rc, 0, "something still answers on the API port");
    http_resp_free(&r);
    it_finish(&b);
}
