/*
 * api_participants.c: the participants of a room.
 *
 *   GET    /v1/rooms/{room}/participants        list
 *   POST   /v1/rooms/{room}/participants        add a plain RTP leg (ParticipantCreate)
 *   GET    /v1/rooms/{room}/participants/{id}   read
 *   PATCH  /v1/rooms/{room}/participants/{id}   mute, deaf, gain, suspend, exclusions
 *   DELETE /v1/rooms/{room}/participants/{id}   kick
 */
#include "api_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t opus_rates[] = { 8000, 12000, 16000, 24000, 48000 };
static const char *const codecs[] = { "opus", "pcmu", "pcma", NULL };

enum {
    API_PT_OPUS = 111,           /* the customary dynamic payload type */
    API_PT_PCMU = 0,             /* static, RFC 3551 table 4 */
    API_PT_PCMA = 8,
    API_EXCLUDE_MAX = 16,
    API_DISPLAY_NAME_MAX = 64,
    /* "[" 39-char IPv6 "]:" 5-digit port */
    API_REMOTE_MAX = 1 + INET6_ADDRSTRLEN + 2 + 5,
};

/* Parses the decimal port at @p: 1..65535, digits only. */
static bool port_valid(const char *p)
{
    unsigned long v = 0;
    size_t n = 0;

    for (; *p; p++, n++) {
        if (*p < '0' || *p > '9' || n >= 5)
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    return n > 0 && v >= 1 && v <= 65535;
}

/* "a.b.c.d:port" or "[v6]:port": the form RFC 3986 uses, so an IPv6
 * address can never be confused with its port. Names are not accepted:
 * resolving them would block the API thread on DNS. */
static bool remote_check(const char *s, char *why, size_t why_len)
{
    char host[INET6_ADDRSTRLEN + 1];
    unsigned char addr[sizeof(struct in6_addr)];
    const char *colon;
    size_t hlen;
    int family = AF_INET;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (!end || end[1] != ':')
            goto bad;
        hlen = (size_t)(end - s - 1);
        colon = end + 1;
        s++;
        family = AF_INET6;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            goto bad;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof(host))
        goto bad;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(family, host, addr) != 1 || !port_valid(colon + 1))
        goto bad;
    return true;

bad:
    snprintf(why, why_len, "it must be ip:port or [ipv6]:port with a port 1-65535");
    return false;
}

/* The payload type's default depends on the codec. */
static int participant_fixup(json_t *body, struct api_schema_error *err)
{
    const char *codec = json_string_value(json_object_get(body, "codec"));
    json_int_t pt = API_PT_OPUS;

    if (json_object_get(body, "payload_type"))
        return 0;
    if (codec && strcmp(codec, "pcmu") == 0)
        pt = API_PT_PCMU;
    else if (codec && strcmp(codec, "pcma") == 0)
        pt = API_PT_PCMA;
    if (json_object_set_new(body, "payload_type", json_integer(pt)) != 0)
        return -ENOMEM;
    return 0;
}

static const struct api_param participant_create_params[] = {
    { .name = "codec", .type = API_T_STRING, .choices = codecs, .def = "\"opus\"" },
    { .name = "payload_type", .type = API_T_INT, .min = 0, .max = 127 },
    { .name = "remote", .type = API_T_STRING, .min = 1, .max = API_REMOTE_MAX,
      .check = remote_check },
    { .name = "rtcp_mux", .type = API_T_BOOL, .def = "true" },
    { .name = "sample_rate", .type = API_T_INT, .one_of = opus_rates,
      .n_one_of = sizeof(opus_rates) / sizeof(opus_rates[0]), .def = "48000" },
    { .name = "display_name", .type = API_T_STRING, .min = 0, .max = API_DISPLAY_NAME_MAX },
};

static const struct api_param participant_update_params[] = {
    { .name = "muted", .type = API_T_BOOL },
    { .name = "deaf", .type = API_T_BOOL },
    { .name = "gain_db", .type = API_T_NUMBER, .fmin = -60.0, .fmax = 20.0 },
    { .name = "suspended", .type = API_T_BOOL },
    { .name = "exclude", .type = API_T_INT_ARRAY, .min = 1, .max = UINT32_MAX,
      .max_items = API_EXCLUDE_MAX },
};

const struct api_schema api__participant_create_schema = {
    .name = "ParticipantCreate",
    .params = participant_create_params,
    .n_params = sizeof(participant_create_params) / sizeof(participant_create_params[0]),
    .fixup = participant_fixup,
};

const struct api_schema api__participant_update_schema = {
    .name = "ParticipantUpdate",
    .params = participant_update_params,
    .n_params = sizeof(participant_update_params) / sizeof(participant_update_params[0]),
    .at_least_one = true,
};

enum MHD_Result api__participants_handle(struct api_server *s, struct api_req *r)
{
    struct api_result res;
    char location[sizeof("/v1/rooms//participants/4294967295") + API_ROOM_NAME_MAX];
    const char *loc = NULL;

    api__backend_call(s, r, &res);
    if (r->route->op == API_OP_PARTICIPANT_CREATE && res.status == MHD_HTTP_CREATED) {
        json_t *id = json_object_get(res.body, "id");

        if (json_is_integer(id) && json_integer_value(id) >= 1 &&
            json_integer_value(id) <= UINT32_MAX) {
            snprintf(location, sizeof(location), "/v1/rooms/%s/participants/%lld", r->room,
                     (long long)json_integer_value(id));
            loc = location;
        }
    }
    return api__send_result(s, r, &res, loc);
}
