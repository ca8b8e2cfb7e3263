/*
 * api_rooms.c: the rooms resource.
 *
 *   GET    /v1/rooms            list
 *   POST   /v1/rooms            create (RoomCreate)
 *   GET    /v1/rooms/{room}     read
 *   PATCH  /v1/rooms/{room}     update settings (RoomUpdate)
 *   DELETE /v1/rooms/{room}     destroy
 *
 * The schemas below are the single statement of what a room's settings
 * may be; docs/openapi.json mirrors them (test_openapi checks the field
 * names and required lists agree).
 */
#include "api_internal.h"

#include <stdio.h>
#include <string.h>

static const int64_t sample_rates[] = { 8000, 16000, 24000, 48000 };
static const int64_t frame_lengths_ms[] = { 10, 20, 40 };

static bool room_name_check(const char *s, char *why, size_t why_len)
{
    if (api__room_name_valid(s))
        return true;
    snprintf(why, why_len, "it must match ^[A-Za-z0-9._~-]{1,64}$ and not be . or ..");
    return false;
}

static bool pin_check(const char *s, char *why, size_t why_len)
{
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            snprintf(why, why_len, "only the digits 0-9 are allowed");
            return false;
        }
    }
    return true;
}

#define ROOM_SETTINGS(DEF_SR, DEF_FRAME, DEF_MAX, DEF_TALKERS, DEF_FALSE)                    \
    { .name = "sample_rate", .type = API_T_INT, .one_of = sample_rates,                     \
      .n_one_of = sizeof(sample_rates) / sizeof(sample_rates[0]), .def = DEF_SR },          \
    { .name = "frame_ms", .type = API_T_INT, .one_of = frame_lengths_ms,                    \
      .n_one_of = sizeof(frame_lengths_ms) / sizeof(frame_lengths_ms[0]), .def = DEF_FRAME },\
    { .name = "max_participants", .type = API_T_INT, .min = 1, .max = 10000,                \
      .def = DEF_MAX },                                                                     \
    { .name = "talkers", .type = API_T_INT, .min = 1, .max = 16, .def = DEF_TALKERS },      \
    { .name = "silence_suppression", .type = API_T_BOOL, .def = DEF_FALSE },                \
    { .name = "comfort_noise", .type = API_T_BOOL, .def = DEF_FALSE },                      \
    { .name = "pin", .type = API_T_STRING, .min = 4, .max = 16, .check = pin_check }

static const struct api_param room_create_params[] = {
    { .name = "name", .type = API_T_STRING, .flags = API_PF_REQUIRED, .min = 1,
      .max = API_ROOM_NAME_MAX, .check = room_name_check },
    ROOM_SETTINGS("48000", "20", "100", "3", "false"),
};

static const struct api_param room_update_params[] = {
    ROOM_SETTINGS(NULL, NULL, NULL, NULL, NULL),
};

const struct api_schema api__room_create_schema = {
    .name = "RoomCreate",
    .params = room_create_params,
    .n_params = sizeof(room_create_params) / sizeof(room_create_params[0]),
};

const struct api_schema api__room_update_schema = {
    .name = "RoomUpdate",
    .params = room_update_params,
    .n_params = sizeof(room_update_params) / sizeof(room_update_params[0]),
    .at_least_one = true,
};

/* Removes "pin" from @o and from the objects of @o's array members. */
static void scrub_pin_object(json_t *o)
{
    const char *key;
    json_t *v, *e;
    size_t i;

    json_object_del(o, "pin");
    json_object_foreach(o, key, v) {
        if (!json_is_array(v))
            continue;
        json_array_foreach(v, i, e) {
            if (json_is_object(e))
                json_object_del(e, "pin");
        }
    }
}

/* The PIN is write-only: whatever the backend builds, it never leaves in
 * a response: not in a room, nor in a list of rooms, bare or wrapped
 * ({"rooms": [...]}). */
static void scrub_pin(json_t *body)
{
    size_t i;
    json_t *e;

    if (json_is_object(body)) {
        scrub_pin_object(body);
    } else if (json_is_array(body)) {
        json_array_foreach(body, i, e) {
            if (json_is_object(e))
                json_object_del(e, "pin");
        }
    }
}

enum MHD_Result api__rooms_handle(struct api_server *s, struct api_req *r)
{
    struct api_result res;
    char location[sizeof("/v1/rooms/") + API_ROOM_NAME_MAX];
    const char *loc = NULL;

    api__backend_call(s, r, &res);
    if (res.status >= 200 && res.status <= 299)
        scrub_pin(res.body);
    if (r->route->op == API_OP_ROOM_CREATE && res.status == MHD_HTTP_CREATED) {
        /* The name was validated against the URL-safe pattern, so it goes
         * into the header as it is. */
        snprintf(location, sizeof(location), "/v1/rooms/%s",
                 json_string_value(json_object_get(r->json, "name")));
        loc = location;
    }
    return api__send_result(s, r, &res, loc);
}
