/*
 * api_routes.c: the route table and the matcher.
 *
 * The table is the single list of what the server answers; the OpenAPI
 * test compares it with docs/openapi.json both ways, so a route cannot be
 * added here without being documented, or documented without existing.
 */
#include "api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const struct api_route api__routes[] = {
    { "GET", "/v1/health", API_ROUTE_PUBLIC, 0, NULL, api__health_get },
    { "GET", "/metrics", 0, 0, NULL, api__metrics_get },
    { "GET", "/v1/openapi.json", 0, 0, NULL, api__openapi_get },
    { "GET", "/v1/overlay", 0, API_OP_OVERLAY_GET, NULL, api__overlay_get },
    { "GET", "/v1/rooms", 0, API_OP_ROOMS_LIST, NULL, api__rooms_handle },
    { "POST", "/v1/rooms", API_ROUTE_BODY, API_OP_ROOM_CREATE,
      &api__room_create_schema, api__rooms_handle },
    { "GET", "/v1/rooms/{room}", 0, API_OP_ROOM_GET, NULL, api__rooms_handle },
    { "PATCH", "/v1/rooms/{room}", API_ROUTE_BODY, API_OP_ROOM_UPDATE,
      &api__room_update_schema, api__rooms_handle },
    { "DELETE", "/v1/rooms/{room}", 0, API_OP_ROOM_DELETE, NULL, api__rooms_handle },
    { "GET", "/v1/rooms/{room}/participants", 0, API_OP_PARTICIPANTS_LIST, NULL,
      api__participants_handle },
    { "POST", "/v1/rooms/{room}/participants", API_ROUTE_BODY, API_OP_PARTICIPANT_CREATE,
      &api__participant_create_schema, api__participants_handle },
    { "GET", "/v1/rooms/{room}/participants/{id}", 0, API_OP_PARTICIPANT_GET, NULL,
      api__participants_handle },
    { "PATCH", "/v1/rooms/{room}/participants/{id}", API_ROUTE_BODY,
      API_OP_PARTICIPANT_UPDATE, &api__participant_update_schema,
      api__participants_handle },
    { "DELETE", "/v1/rooms/{room}/participants/{id}", 0, API_OP_PARTICIPANT_DELETE, NULL,
      api__participants_handle },
    { "GET", "/v1/rooms/{room}/events", 0, 0, NULL, api__events_get },
};

const size_t api__n_routes = sizeof(api__routes) / sizeof(api__routes[0]);

bool api__room_name_valid(const char *name)
{
    size_t n = 0;

    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' || c == '-';
        if (!ok || n >= API_ROOM_NAME_MAX)
            return false;
    }
    if (n == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return true;
}

bool api__participant_id_parse(const char *s, size_t len, uint32_t *id)
{
    uint64_t v = 0;

    /* At most 10 digits, no leading zero: one spelling per id, so ids in
     * URLs compare equal as strings too. */
    if (len == 0 || len > 10 || s[0] == '0')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *id = (uint32_t)v;
    return true;
}

/* Matches one path segment @seg (length @len) against the template
 * segment @tpl (length @tlen), capturing parameters into @m. */
static bool segment_match(const char *tpl, size_t tlen, const char *seg, size_t len,
                          struct api_match *m)
{
    char room[API_ROOM_NAME_MAX + 1];

    if (tlen == 6 && memcmp(tpl, "{room}", 6) == 0) {
        if (len == 0 || len > API_ROOM_NAME_MAX)
            return false;
        memcpy(room, seg, len);
        room[len] = '\0';
        if (!api__room_name_valid(room))
            return false;
        memcpy(m->room, room, len + 1);
        return true;
    }
    if (tlen == 4 && memcmp(tpl, "{id}", 4) == 0)
        return api__participant_id_parse(seg, len, &m->participant);
    return tlen == len && memcmp(tpl, seg, len) == 0;
}

/* True when @url matches the template @path segment by segment. */
static bool path_match(const char *path, const char *url, struct api_match *m)
{
    const char *t = path;
    const char *u = url;

    m->room[0] = '\0';
    m->participant = 0;
    while (*t == '/' && *u == '/') {
        const char *te = strchr(t + 1, '/');
        const char *ue = strchr(u + 1, '/');
        size_t tlen, ulen;

        if (!te)
            te = t + strlen(t);
        if (!ue)
            ue = u + strlen(u);
        tlen = (size_t)(te - t - 1);
        ulen = (size_t)(ue - u - 1);
        if (!segment_match(t + 1, tlen, u + 1, ulen, m))
            return false;
        t = te;
        u = ue;
    }
    /* Both exhausted at once: a trailing slash or extra segment is
     * another path. */
    return *t == '\0' && *u == '\0';
}

static void allow_add(struct api_match *m, const char *method)
{
    size_t used = strlen(m->allow);

    if (strstr(m->allow, method))
        return;
    snprintf(m->allow + used, sizeof(m->allow) - used, "%s%s", used ? ", " : "", method);
}

int api__route_match(const char *method, const char *url, struct api_match *m)
{
    bool path_found = false;

    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < api__n_routes; i++) {
        const struct api_route *rt = &api__routes[i];
        struct api_match cand;

        memset(&cand, 0, sizeof(cand));
        if (!path_match(rt->path, url, &cand))
            continue;
        path_found = true;
        allow_add(m, rt->method);
        if (strcmp(rt->method, method) == 0) {
            memcpy(m->room, cand.room, sizeof(m->room));
            m->participant = cand.participant;
            m->route = rt;
        }
    }
    if (m->route)
        return 0;
    return path_found ? -EPERM : -ENOENT;
}

/* GET /v1/overlay: the overlay's state, straight from the backend. */
enum MHD_Result api__overlay_get(struct api_server *s, struct api_req *r)
{
    struct api_result res;

    api__backend_call(s, r, &res);
    return api__send_result(s, r, &res, NULL);
}
