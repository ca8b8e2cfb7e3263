/*
 * test_api.c: the REST API end to end. Each test starts the real server
 * (libmicrohttpd, 127.0.0.1, port 0) over an in-memory fake backend and
 * talks HTTP to it with libcurl.
 */
#include "api.h"
#include "fake_backend.h"
#include "http_client.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "test-token-0123456789"

static struct fake_backend fb;
static struct api_backend be;
static struct api_server *srv;
static char base[64];

/* Starts the server with @cfg (NULL: defaults) over a fresh fake. */
static void start_with(const struct api_config *cfg)
{
    struct api_config c = { .bind_addr = "127.0.0.1", .port = 0, .token = TOKEN };

    if (cfg)
        c = *cfg;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fake_backend_init(&fb);
    be = fake_backend_api(&fb);
    cr_assert_eq(api_server_start(&c, &be, &srv), 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", api_server_port(srv));
}

static void setup(void)
{
    start_with(NULL);
}

static void teardown(void)
{
    api_server_stop(srv);
    srv = NULL;
    fake_backend_fini(&fb);
    curl_global_cleanup();
}

static char *url(const char *path)
{
    static char buf[512];

    snprintf(buf, sizeof(buf), "%s%s", base, path);
    return buf;
}

/* One request with the right token. */
static struct http_resp req(const char *method, const char *path, const char *json)
{
    struct http_resp r;
    struct http_req q = {
        .method = method, .url = url(path), .token = TOKEN,
        .content_type = json ? "application/json" : NULL,
        .body = json, .body_len = json ? strlen(json) : 0,
    };

    cr_assert_eq(http_do(&q, &r), 0, "curl failed for %s %s", method, path);
    return r;
}

/* Checks that @r is an RFC 9457 problem with @status; returns the parsed
 * body (caller decrefs). */
static json_t *assert_problem(const struct http_resp *r, long status)
{
    char ct[128];
    json_t *j;

    cr_assert_eq(r->status, status, "status %ld, want %ld; body %s", r->status, status, r->body);
    cr_assert_not_null(http_header(r, "Content-Type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "application/problem+json");
    j = http_json(r);
    cr_assert_not_null(j, "problem body is not JSON: %s", r->body);
    cr_assert(json_is_string(json_object_get(j, "type")));
    cr_assert(json_is_string(json_object_get(j, "title")));
    cr_assert(json_is_string(json_object_get(j, "detail")));
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), status);
    return j;
}

static void assert_422_field(const char *method, const char *path, const char *body,
                             const char *field)
{
    struct http_resp r = req(method, path, body);
    json_t *j = assert_problem(&r, 422);

    cr_assert_str_eq(json_string_value(json_object_get(j, "field")), field,
                     "body %s: field %s, want %s", body,
                     json_string_value(json_object_get(j, "field")), field);
    json_decref(j);
    http_resp_free(&r);
}

TestSuite(api, .init = setup, .fini = teardown, .timeout = 30);
/* Tests that start the server themselves, with their own configuration. */
TestSuite(api_cfg, .fini = teardown, .timeout = 30);

Test(api, health_needs_no_token)
{
    struct http_req q = { .url = url("/v1/health") };
    struct http_resp r;
    json_t *j;

    cr_assert_eq(http_do(&q, &r), 0);
    cr_assert_eq(r.status, 200);
    j = http_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    http_resp_free(&r);
}

Test(api, no_token_is_401_with_challenge)
{
    struct http_req q = { .url = url("/v1/rooms") };
    struct http_resp r;
    char hv[128];
    json_t *j;

    cr_assert_eq(http_do(&q, &r), 0);
    j = assert_problem(&r, 401);
    cr_assert_not_null(http_header(&r, "WWW-Authenticate", hv, sizeof(hv)));
    cr_assert_eq(strncmp(hv, "Bearer", 6), 0, "WWW-Authenticate: %s", hv);
    json_decref(j);
    http_resp_free(&r);
    /* Unauthenticated clients learn nothing about which paths exist. */
    q.url = url("/no/such/path");
    cr_assert_eq(http_do(&q, &r), 0);
    cr_assert_eq(r.status, 401);
    http_resp_free(&r);
}

Test(api, wrong_token_is_401)
{
    const char *bad[] = { "wrong", TOKEN "x", "test-token-012345678", "" };
    struct http_resp r;
    char hv[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_req q = { .url = url("/v1/rooms"), .token = bad[i] };
        json_t *j;

        cr_assert_eq(http_do(&q, &r), 0);
        j = assert_problem(&r, 401);
        cr_assert_not_null(http_header(&r, "WWW-Authenticate", hv, sizeof(hv)));
        json_decref(j);
        http_resp_free(&r);
    }
    {
        struct http_req q = { .url = url("/v1/rooms"), .auth_header = "Basic " TOKEN };

        cr_assert_eq(http_do(&q, &r), 0);
        cr_assert_eq(r.status, 401);
        http_resp_free(&r);
    }
    {
        /* The scheme is case-insensitive (RFC 6750 via RFC 9110). */
        struct http_req q = { .url = url("/v1/rooms"), .auth_header = "bearer   " TOKEN };

        cr_assert_eq(http_do(&q, &r), 0);
        cr_assert_eq(r.status, 200);
        http_resp_free(&r);
    }
}

Test(api, bad_json_is_400_problem)
{
    const char *bodies[] = { "{not json", "{\"name\":\"a\"} trailing", "[1,2]",
                             "{\"name\":\"a\",\"name\":\"b\"}", "\"just a string\"" };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct http_resp r = req("POST", "/v1/rooms", bodies[i]);
        json_t *j = assert_problem(&r, 400);

        cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "about:blank");
        cr_assert_str_eq(json_string_value(json_object_get(j, "title")), "Bad Request");
        json_decref(j);
        http_resp_free(&r);
    }
    {
        /* POST with the right type but no body at all. */
        struct http_resp r = req("POST", "/v1/rooms", "");
        json_t *j = assert_problem(&r, 400);

        json_decref(j);
        http_resp_free(&r);
    }
}

Test(api, unknown_room_and_malformed_ids_are_404)
{
    const char *paths[] = {
        "/v1/rooms/nope", "/v1/rooms/nope/participants", "/v1/rooms/bad%20name",
        "/v1/rooms/..", "/v1/rooms/a%2Fb", "/v1/rooms/x2345678901234567890123456789012345678901234567890123456789012345", /* 65 */
        "/v1/rooms/r1/participants/0", "/v1/rooms/r1/participants/01",
        "/v1/rooms/r1/participants/abc", "/v1/rooms/r1/participants/4294967296",
        "/v1/rooms/r1/participants/-1", "/v1/rooms/r1/participants/99",
        "/v1/rooms/", "/v1/rooms/r1/", "/v2/rooms", "/",
    };

    fake_backend_seed(&fb, "r1");
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct http_resp r = req("GET", paths[i], NULL);
        json_t *j;

        cr_assert_eq(r.status, 404, "%s: %ld", paths[i], r.status);
        j = assert_problem(&r, 404);
        json_decref(j);
        http_resp_free(&r);
    }
    {
        /* The largest id is well-formed: the backend says 404 itself. */
        struct http_resp r = req("GET", "/v1/rooms/r1/participants/4294967295", NULL);

        cr_assert_eq(r.status, 404);
        cr_assert_eq(fake_backend_last_op(&fb), API_OP_PARTICIPANT_GET);
        http_resp_free(&r);
    }
}

Test(api, wrong_method_is_405_with_allow)
{
    struct {
        const char *method, *path, *allow;
    } cases[] = {
        { "PUT", "/v1/rooms", "GET, POST" },
        { "DELETE", "/v1/rooms", "GET, POST" },
        { "POST", "/v1/rooms/r1", "GET, PATCH, DELETE" },
        { "PUT", "/v1/rooms/r1/participants/1", "GET, PATCH, DELETE" },
        { "POST", "/v1/rooms/r1/events", "GET" },
        { "POST", "/v1/health", "GET" },
    };
    char hv[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_resp r = req(cases[i].method, cases[i].path, NULL);
        json_t *j = assert_problem(&r, 405);

        cr_assert_not_null(http_header(&r, "Allow", hv, sizeof(hv)));
        cr_assert_str_eq(hv, cases[i].allow, "%s %s", cases[i].method, cases[i].path);
        json_decref(j);
        http_resp_free(&r);
    }
}

/* A syntactically fine JSON body of @n bytes. */
static char *big_body(size_t n)
{
    char *b = malloc(n + 1);

    memset(b, ' ', n);
    memcpy(b, "{\"name\":\"big\"", 13);
    b[n - 1] = '}';
    b[n] = '\0';
    return b;
}

Test(api, oversized_body_is_413)
{
    char *b = big_body(70000);
    struct http_resp r;
    json_t *j;

    /* Declared length over the limit, body sent anyway. */
    r = req("POST", "/v1/rooms", b);
    j = assert_problem(&r, 413);
    json_decref(j);
    http_resp_free(&r);
    /* Same, but the client waits for 100 Continue: refused before it sends. */
    {
        struct http_req q = { .method = "POST", .url = url("/v1/rooms"), .token = TOKEN,
                              .content_type = "application/json", .body = b,
                              .body_len = strlen(b), .expect_100 = true };

        cr_assert_eq(http_do(&q, &r), 0);
        j = assert_problem(&r, 413);
        json_decref(j);
        http_resp_free(&r);
    }
    /* No declared length (chunked): noticed while reading. */
    {
        struct http_req q = { .method = "POST", .url = url("/v1/rooms"), .token = TOKEN,
                              .content_type = "application/json", .body = b,
                              .body_len = strlen(b), .chunked = true };

        cr_assert_eq(http_do(&q, &r), 0);
        j = assert_problem(&r, 413);
        json_decref(j);
        http_resp_free(&r);
    }
    free(b);
    /* Just under the limit is fine (and the server still answers). */
    b = big_body(65536);
    r = req("POST", "/v1/rooms", b);
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    http_resp_free(&r);
    free(b);
}

Test(api, wrong_content_type_is_415)
{
    const char *types[] = { "text/plain", "application/x-www-form-urlencoded",
                            "application/jsonx", NULL };
    struct http_resp r;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct http_req q = { .method = "POST", .url = url("/v1/rooms"), .token = TOKEN,
                              .content_type = types[i], .body = "{\"name\":\"a\"}",
                              .body_len = 12 };
        json_t *j;

        cr_assert_eq(http_do(&q, &r), 0);
        j = assert_problem(&r, 415);
        json_decref(j);
        http_resp_free(&r);
    }
    {
        struct http_req q = { .method = "POST", .url = url("/v1/rooms"), .token = TOKEN,
                              .content_type = "Application/JSON; charset=utf-8",
                              .body = "{\"name\":\"a\"}", .body_len = 12 };

        cr_assert_eq(http_do(&q, &r), 0);
        cr_assert_eq(r.status, 201);
        http_resp_free(&r);
    }
}

Test(api, invalid_field_is_422_naming_it)
{
    fake_backend_seed(&fb, "r1");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"talkers\":17}", "talkers");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"talkers\":0}", "talkers");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"sample_rate\":44100}", "sample_rate");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"sample_rate\":48000.0}", "sample_rate");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"frame_ms\":30}", "frame_ms");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"max_participants\":10001}",
                     "max_participants");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"comfort_noise\":1}", "comfort_noise");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"bad name\"}", "name");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"..\"}", "name");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"\"}", "name");
    assert_422_field("POST", "/v1/rooms", "{\"name\":7}", "name");
    assert_422_field("POST", "/v1/rooms", "{\"talkers\":3}", "name");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"pin\":\"12ab\"}", "pin");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"pin\":\"123\"}", "pin");
    assert_422_field("PATCH", "/v1/rooms/r1", "{\"talkers\":\"3\"}", "talkers");
    assert_422_field("PATCH", "/v1/rooms/r1", "{\"name\":\"renamed\"}", "name");
    assert_422_field("POST", "/v1/rooms/r1/participants", "{\"codec\":\"g722\"}", "codec");
    assert_422_field("POST", "/v1/rooms/r1/participants", "{\"payload_type\":128}",
                     "payload_type");
    assert_422_field("POST", "/v1/rooms/r1/participants", "{\"remote\":\"1.2.3.4\"}", "remote");
    assert_422_field("POST", "/v1/rooms/r1/participants", "{\"remote\":\"1.2.3.4:0\"}", "remote");
    assert_422_field("POST", "/v1/rooms/r1/participants", "{\"remote\":\"::1:5000\"}", "remote");
    assert_422_field("POST", "/v1/rooms/r1/participants", "{\"remote\":\"host.example:5000\"}",
                     "remote");
    assert_422_field("POST", "/v1/rooms/r1/participants", "{\"sample_rate\":44100}",
                     "sample_rate");
    assert_422_field("POST", "/v1/rooms/r1/participants",
                     "{\"display_name\":\"0123456789012345678901234567890123456789012345678901234567890123X\"}",
                     "display_name");
    assert_422_field("PATCH", "/v1/rooms/r1/participants/1", "{\"gain_db\":20.5}", "gain_db");
    assert_422_field("PATCH", "/v1/rooms/r1/participants/1", "{\"gain_db\":\"loud\"}", "gain_db");
    assert_422_field("PATCH", "/v1/rooms/r1/participants/1", "{\"exclude\":[2,0]}", "exclude[1]");
    assert_422_field("PATCH", "/v1/rooms/r1/participants/1", "{\"exclude\":[4294967296]}",
                     "exclude[0]");
    assert_422_field("PATCH", "/v1/rooms/r1/participants/1",
                     "{\"exclude\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}", "exclude");
    assert_422_field("PATCH", "/v1/rooms/r1/participants/1", "{\"muted\":\"yes\"}", "muted");
    /* Valid edge values go through. */
    {
        struct http_resp r = req("POST", "/v1/rooms",
                                 "{\"name\":\"x234567890123456789012345678901234567890123456789012345678901234\","
                                 "\"talkers\":16,\"max_participants\":10000,\"pin\":\"0123456789012345\"}");

        cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
        http_resp_free(&r);
    }
    {
        struct http_resp r = req("POST", "/v1/rooms/r1/participants",
                                 "{\"remote\":\"[2001:db8::1]:65535\",\"display_name\":\"Zoë\"}");

        cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
        http_resp_free(&r);
    }
}

Test(api, unknown_field_is_422)
{
    struct http_resp r;
    json_t *j;

    fake_backend_seed(&fb, "r1");
    assert_422_field("POST", "/v1/rooms", "{\"name\":\"r\",\"colour\":\"blue\"}", "colour");
    assert_422_field("PATCH", "/v1/rooms/r1/participants/1", "{\"mute\":true}", "mute");
    assert_422_field("POST", "/v1/rooms/r1/participants", "{\"id\":5}", "id");
    /* PATCH with nothing to change. */
    r = req("PATCH", "/v1/rooms/r1", "{}");
    j = assert_problem(&r, 422);
    json_decref(j);
    http_resp_free(&r);
}

Test(api_cfg, rate_limit_is_429)
{
    struct api_config c = { .bind_addr = "127.0.0.1", .token = TOKEN,
                            .rate_per_s = 1, .rate_burst = 3 };
    struct http_resp r;
    char hv[32];
    json_t *j;

    start_with(&c);
    for (int i = 0; i < 3; i++) {
        r = req("GET", "/v1/rooms", NULL);
        cr_assert_eq(r.status, 200, "request %d: %ld", i, r.status);
        http_resp_free(&r);
    }
    r = req("GET", "/v1/rooms", NULL);
    j = assert_problem(&r, 429);
    cr_assert_not_null(http_header(&r, "Retry-After", hv, sizeof(hv)));
    cr_assert_geq(atoi(hv), 1);
    json_decref(j);
    http_resp_free(&r);
    /* Health probes are never limited. */
    r = req("GET", "/v1/health", NULL);
    cr_assert_eq(r.status, 200);
    http_resp_free(&r);
    /* A token comes back after a second. */
    usleep(1100 * 1000);
    r = req("GET", "/v1/rooms", NULL);
    cr_assert_eq(r.status, 200);
    http_resp_free(&r);
}

Test(api, rooms_and_participants_round_trip)
{
    struct http_resp r;
    json_t *j, *b;
    char hv[128];

    r = req("POST", "/v1/rooms", "{\"name\":\"Team-1\",\"talkers\":4,\"pin\":\"1234\"}");
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    cr_assert_not_null(http_header(&r, "Location", hv, sizeof(hv)));
    cr_assert_str_eq(hv, "/v1/rooms/Team-1");
    j = http_json(&r);
    cr_assert_null(json_object_get(j, "pin"), "the PIN leaked: %s", r.body);
    cr_assert(json_is_true(json_object_get(j, "pin_required")));
    cr_assert_eq(json_integer_value(json_object_get(j, "talkers")), 4);
    json_decref(j);
    http_resp_free(&r);
    /* The backend got every default filled in. */
    b = fake_backend_last_body(&fb);
    cr_assert_eq(json_integer_value(json_object_get(b, "sample_rate")), 48000);
    cr_assert_eq(json_integer_value(json_object_get(b, "frame_ms")), 20);
    cr_assert_eq(json_integer_value(json_object_get(b, "max_participants")), 100);
    cr_assert(json_is_false(json_object_get(b, "silence_suppression")));
    cr_assert(json_is_false(json_object_get(b, "comfort_noise")));
    cr_assert_str_eq(json_string_value(json_object_get(b, "pin")), "1234");
    json_decref(b);

    r = req("POST", "/v1/rooms", "{\"name\":\"Team-1\"}");
    j = assert_problem(&r, 409);
    json_decref(j);
    http_resp_free(&r);

    r = req("GET", "/v1/rooms", NULL);
    cr_assert_eq(r.status, 200);
    j = http_json(&r);
    cr_assert_eq(json_array_size(json_object_get(j, "rooms")), 1, "%s", r.body);
    cr_assert_null(json_object_get(json_array_get(json_object_get(j, "rooms"), 0), "pin"),
                   "the PIN leaked: %s", r.body);
    json_decref(j);
    http_resp_free(&r);

    r = req("PATCH", "/v1/rooms/Team-1", "{\"talkers\":5,\"comfort_noise\":true}");
    cr_assert_eq(r.status, 200);
    j = http_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(j, "talkers")), 5);
    json_decref(j);
    http_resp_free(&r);
    b = fake_backend_last_body(&fb);
    cr_assert_eq(json_object_size(b), 2, "PATCH must pass only the fields sent");
    json_decref(b);

    r = req("POST", "/v1/rooms/Team-1/participants", "{\"codec\":\"pcmu\"}");
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    cr_assert_not_null(http_header(&r, "Location", hv, sizeof(hv)));
    cr_assert_str_eq(hv, "/v1/rooms/Team-1/participants/1");
    http_resp_free(&r);
    b = fake_backend_last_body(&fb);
    cr_assert_eq(json_integer_value(json_object_get(b, "payload_type")), 0);
    cr_assert(json_is_true(json_object_get(b, "rtcp_mux")));
    cr_assert_eq(json_integer_value(json_object_get(b, "sample_rate")), 48000);
    cr_assert_null(json_object_get(b, "remote"));
    json_decref(b);

    r = req("GET", "/v1/rooms/Team-1/participants", NULL);
    cr_assert_eq(r.status, 200);
    j = http_json(&r);
    cr_assert_eq(json_array_size(json_object_get(j, "participants")), 1, "%s", r.body);
    json_decref(j);
    http_resp_free(&r);

    r = req("PATCH", "/v1/rooms/Team-1/participants/1",
            "{\"muted\":true,\"gain_db\":-6.5,\"exclude\":[2,3]}");
    cr_assert_eq(r.status, 200);
    j = http_json(&r);
    cr_assert(json_is_true(json_object_get(j, "muted")));
    json_decref(j);
    http_resp_free(&r);

    r = req("GET", "/v1/rooms/Team-1", NULL);
    cr_assert_eq(r.status, 200);
    j = http_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(j, "participants")), 1);
    json_decref(j);
    http_resp_free(&r);

    r = req("DELETE", "/v1/rooms/Team-1/participants/1", NULL);
    cr_assert_eq(r.status, 204);
    cr_assert_eq(r.body_len, 0);
    http_resp_free(&r);
    r = req("GET", "/v1/rooms/Team-1/participants/1", NULL);
    j = assert_problem(&r, 404);
    json_decref(j);
    http_resp_free(&r);

    r = req("DELETE", "/v1/rooms/Team-1", NULL);
    cr_assert_eq(r.status, 204);
    http_resp_free(&r);
    r = req("GET", "/v1/rooms/Team-1", NULL);
    j = assert_problem(&r, 404);
    json_decref(j);
    http_resp_free(&r);
}

Test(api, backend_errors_become_problems)
{
    struct http_resp r = req("POST", "/v1/rooms", "{\"name\":\"unavailable\"}");
    json_t *j = assert_problem(&r, 503);

    cr_assert_str_eq(json_string_value(json_object_get(j, "detail")), "the bridge is busy");
    json_decref(j);
    http_resp_free(&r);
}

Test(api, overlay_passes_through)
{
    struct http_resp r = req("GET", "/v1/overlay", NULL);
    json_t *j = http_json(&r);

    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "node_id")), "fake");
    json_decref(j);
    http_resp_free(&r);
}

Test(api, overlay_disabled_is_503_problem)
{
    struct http_resp r;
    json_t *j;

    pthread_mutex_lock(&fb.lock);
    fb.overlay_off = true;
    pthread_mutex_unlock(&fb.lock);
    r = req("GET", "/v1/overlay", NULL);
    j = assert_problem(&r, 503);
    cr_expect_str_eq(json_string_value(json_object_get(j, "detail")),
                     "the overlay is disabled on this bridge (overlay = false)");
    cr_expect_eq(fake_backend_last_op(&fb), API_OP_OVERLAY_GET);
    json_decref(j);
    http_resp_free(&r);
}

Test(api, overlay_is_get_only)
{
    struct http_resp r = req("POST", "/v1/overlay", "{}");
    char allow[64];
    json_t *j = assert_problem(&r, 405);

    cr_assert_not_null(http_header(&r, "Allow", allow, sizeof(allow)));
    cr_expect_str_eq(allow, "GET");
    json_decref(j);
    http_resp_free(&r);
}

/* An SSE client on its own thread. */
struct stream {
    pthread_t thread;
    char path[128];
    struct http_resp resp;
};

static void *stream_main(void *arg)
{
    struct stream *st = arg;
    struct http_req q = { .url = url(st->path), .token = TOKEN, .timeout_ms = 10000 };

    http_do(&q, &st->resp);
    return NULL;
}

static void stream_open(struct stream *st, const char *path)
{
    memset(st, 0, sizeof(*st));
    snprintf(st->path, sizeof(st->path), "%s", path);
    cr_assert_eq(pthread_create(&st->thread, NULL, stream_main, st), 0);
}

Test(api, sse_delivers_events_and_ends_after_destroyed)
{
    struct stream st;
    json_t *d;
    char ct[64];
    const char *p;

    fake_backend_seed(&fb, "r1");
    stream_open(&st, "/v1/rooms/r1/events");
    cr_assert(fake_backend_wait_subs(&fb, 1, 5000), "no subscription");
    d = json_pack("{s:i, s:s}", "id", 7, "display_name", "line\nbreak");
    cr_assert_eq(fake_backend_emit(&fb, "r1", "joined", d), 1);
    json_decref(d);
    usleep(50 * 1000);      /* let one event go out alone, then a burst */
    d = json_pack("{s:i}", "id", 7);
    fake_backend_emit(&fb, "r1", "talking", d);
    fake_backend_emit(&fb, "r1", "stopped-talking", d);
    fake_backend_emit(&fb, "r1", "bad type\nevent: forged", d);   /* dropped */
    fake_backend_emit(&fb, "r1", "destroyed", d);
    fake_backend_emit(&fb, "r1", "left", d);                      /* after the end */
    json_decref(d);
    pthread_join(st.thread, NULL);

    cr_assert_eq(st.resp.curl_rc, 0, "curl %d", st.resp.curl_rc);
    cr_assert_eq(st.resp.status, 200);
    cr_assert_not_null(http_header(&st.resp, "Content-Type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "text/event-stream");
    p = strstr(st.resp.body, "event: joined\ndata: {\"id\":7,\"display_name\":\"line\\nbreak\"}\n\n");
    cr_assert_not_null(p, "body: %s", st.resp.body);
    p = strstr(p, "event: talking\ndata: {\"id\":7}\n\n");
    cr_assert_not_null(p, "body: %s", st.resp.body);
    p = strstr(p, "event: stopped-talking\ndata: {\"id\":7}\n\n");
    cr_assert_not_null(p, "body: %s", st.resp.body);
    p = strstr(p, "event: destroyed\ndata: {\"id\":7}\n\n");
    cr_assert_not_null(p, "body: %s", st.resp.body);
    cr_assert_str_eq(p, "event: destroyed\ndata: {\"id\":7}\n\n", "data after destroyed");
    cr_assert_null(strstr(st.resp.body, "forged"));
    http_resp_free(&st.resp);
    /* The api unsubscribed (a no-op for the fake after "destroyed"). */
    for (int i = 0; i < 200 && fake_backend_unsubscribed(&fb) < 1; i++)
        usleep(5000);
    cr_assert_eq(fake_backend_unsubscribed(&fb), 1);
}

Test(api, sse_room_deleted_through_the_api_ends_stream)
{
    struct stream st;
    struct http_resp r;

    fake_backend_seed(&fb, "r1");
    stream_open(&st, "/v1/rooms/r1/events");
    cr_assert(fake_backend_wait_subs(&fb, 1, 5000));
    r = req("DELETE", "/v1/rooms/r1", NULL);
    cr_assert_eq(r.status, 204);
    http_resp_free(&r);
    pthread_join(st.thread, NULL);
    cr_assert_eq(st.resp.curl_rc, 0);
    cr_assert_not_null(strstr(st.resp.body, "event: destroyed\n"));
    http_resp_free(&st.resp);
}

Test(api, sse_unknown_room_is_404)
{
    struct http_resp r = req("GET", "/v1/rooms/nope/events", NULL);
    json_t *j = assert_problem(&r, 404);

    json_decref(j);
    http_resp_free(&r);
}

Test(api_cfg, sse_slow_subscriber_is_dropped)
{
    struct api_config c = { .bind_addr = "127.0.0.1", .token = TOKEN, .sse_queue_max = 4 };
    struct stream st;
    struct http_resp r;

    start_with(&c);
    fake_backend_seed(&fb, "r1");
    /* 20 events arrive before the stream can send any. */
    fb.burst_on_subscribe = 20;
    stream_open(&st, "/v1/rooms/r1/events");
    pthread_join(st.thread, NULL);
    cr_assert_eq(st.resp.curl_rc, 0);
    cr_assert_not_null(strstr(st.resp.body, "event: error\ndata: {\"detail\":"), "%s",
                       st.resp.body);
    cr_assert_null(strstr(st.resp.body, "\"seq\":19"), "%s", st.resp.body);
    http_resp_free(&st.resp);
    r = req("GET", "/metrics", NULL);
    cr_assert_not_null(strstr(r.body, "chorus_api_sse_dropped_total 1\n"), "%s", r.body);
    http_resp_free(&r);
}

Test(api_cfg, sse_keepalive_comments)
{
    struct api_config c = { .bind_addr = "127.0.0.1", .token = TOKEN, .sse_keepalive_ms = 50 };
    struct stream st;
    json_t *d = json_object();

    start_with(&c);
    fake_backend_seed(&fb, "r1");
    stream_open(&st, "/v1/rooms/r1/events");
    cr_assert(fake_backend_wait_subs(&fb, 1, 5000));
    usleep(300 * 1000);
    fake_backend_emit(&fb, "r1", "destroyed", d);
    json_decref(d);
    pthread_join(st.thread, NULL);
    cr_assert_not_null(strstr(st.resp.body, ": keep-alive\n\n"), "%s", st.resp.body);
    http_resp_free(&st.resp);
}

Test(api_cfg, sse_client_gone_is_noticed_and_unsubscribed)
{
    struct api_config c = { .bind_addr = "127.0.0.1", .token = TOKEN, .sse_keepalive_ms = 50 };
    struct http_req q;
    struct http_resp r;
    char u[128];

    start_with(&c);
    fake_backend_seed(&fb, "r1");
    snprintf(u, sizeof(u), "%s/v1/rooms/r1/events", base);
    /* The client gives up after 200 ms while the stream is parked; the
     * next keep-alive write fails and the subscription must end. */
    q = (struct http_req){ .url = u, .token = TOKEN, .timeout_ms = 200 };
    http_do(&q, &r);
    cr_assert_not_null(strstr(r.body, ": subscribed to r1"), "%s", r.body);
    http_resp_free(&r);
    cr_assert(fake_backend_wait_subs(&fb, 0, 5000), "the subscription outlived its client");
    cr_assert_eq(fake_backend_unsubscribed(&fb), 1);
    r = req("GET", "/metrics", NULL);
    cr_assert_not_null(strstr(r.body, "chorus_api_sse_streams 0\n"), "%s", r.body);
    http_resp_free(&r);
}

Test(api_cfg, stop_ends_open_streams)
{
    struct stream st;

    start_with(NULL);
    fake_backend_seed(&fb, "r1");
    stream_open(&st, "/v1/rooms/r1/events");
    cr_assert(fake_backend_wait_subs(&fb, 1, 5000));
    usleep(50 * 1000);  /* let the stream park (suspend) */
    api_server_stop(srv);
    srv = NULL;
    pthread_join(st.thread, NULL);
    cr_assert_not_null(strstr(st.resp.body, ": subscribed to r1"), "%s", st.resp.body);
    http_resp_free(&st.resp);
    cr_assert_eq(fake_backend_unsubscribed(&fb), 1);
}

Test(api, metrics_count_requests_by_status)
{
    struct http_req q = { .url = url("/v1/rooms") };
    struct http_resp r;
    char ct[128];

    cr_assert_eq(http_do(&q, &r), 0);       /* 401 */
    http_resp_free(&r);
    r = req("GET", "/v1/rooms", NULL);      /* 200 */
    http_resp_free(&r);
    r = req("GET", "/v1/rooms/nope", NULL); /* 404 */
    http_resp_free(&r);
    r = req("GET", "/metrics", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(http_header(&r, "Content-Type", ct, sizeof(ct)));
    cr_assert_eq(strncmp(ct, "text/plain; version=0.0.4", 25), 0, "%s", ct);
    cr_assert_not_null(strstr(r.body, "# TYPE chorus_api_requests_total counter\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "chorus_api_requests_total{status=\"401\"} 1\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "chorus_api_requests_total{status=\"200\"} 1\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "chorus_api_requests_total{status=\"404\"} 1\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "chorus_api_backend_metrics_up 1\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "chorus_rooms 0\n"), "%s", r.body);
    http_resp_free(&r);
    r = req("GET", "/metrics", NULL);
    cr_assert_not_null(strstr(r.body, "chorus_api_requests_total{status=\"200\"} 2\n"), "%s", r.body);
    http_resp_free(&r);
}

Test(api_start, rejects_bad_config, .timeout = 30)
{
    struct fake_backend f;
    struct api_backend b;
    struct api_server *s = NULL;
    struct api_config c = { .bind_addr = "127.0.0.1", .token = "" };

    fake_backend_init(&f);
    b = fake_backend_api(&f);
    cr_assert_eq(api_server_start(&c, &b, &s), -EINVAL);
    c.token = TOKEN;
    c.bind_addr = "not-an-address";
    cr_assert_eq(api_server_start(&c, &b, &s), -EINVAL);
    c.bind_addr = "127.0.0.1";
    b.call = NULL;
    cr_assert_eq(api_server_start(&c, &b, &s), -EINVAL);
    b = fake_backend_api(&f);
    c.openapi_path = "/nonexistent/openapi.json";
    cr_assert_eq(api_server_start(&c, &b, &s), -ENOENT);
    cr_assert_null(s);
    fake_backend_fini(&f);
}
