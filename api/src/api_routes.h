/*
 * api_routes.h: the route table, exported so that tests (the OpenAPI
 * cross-check) and the fuzz target can enumerate the routes the code
 * really serves.
 *
 * Thread: any (the table is immutable).
 */
#ifndef API_ROUTES_H
#define API_ROUTES_H

#include "api.h"
#include "api_schema.h"

#include <microhttpd.h>

struct api_server;
struct api_req;

enum api_route_flags {
    API_ROUTE_PUBLIC = 1 << 0,   /* no bearer token, no rate limit (health) */
    API_ROUTE_BODY = 1 << 1,     /* takes an application/json body */
};

/* Answers a matched, authorised, validated request: must queue a response
 * (through api__send*) and return its MHD result. */
typedef enum MHD_Result (*api_handler_fn)(struct api_server *s, struct api_req *r);

struct api_route {
    const char *method;              /* "GET", "POST", "PATCH", "DELETE" */
    const char *path;                /* OpenAPI path template: /v1/rooms/{room} */
    unsigned flags;                  /* enum api_route_flags */
    enum api_op op;                  /* backend operation, or 0 */
    const struct api_schema *schema; /* body schema (API_ROUTE_BODY), or NULL */
    api_handler_fn handle;
};

extern const struct api_route api__routes[];
extern const size_t api__n_routes;

enum {
    API_ROOM_NAME_MAX = 64,          /* ^[A-Za-z0-9._~-]{1,64}$ */
    API_ALLOW_MAX = 48,              /* "GET, POST, PATCH, DELETE" and then some */
};

/* The result of matching a request line against the table. */
struct api_match {
    const struct api_route *route;   /* the route, when the method matched */
    char room[API_ROOM_NAME_MAX + 1];/* {room}, or "" */
    uint32_t participant;            /* {id}, or 0 */
    char allow[API_ALLOW_MAX];       /* methods the path supports ("GET, POST") */
};

/* Matches @method and @url (a path, no query string). Returns 0 with
 * m->route set; -ENOENT when no route has this path (including paths
 * whose {room} or {id} are malformed: those name no resource); or
 * -EPERM when the path exists but not with this method (m->allow then
 * lists the methods that do). */
int api__route_match(const char *method, const char *url, struct api_match *m);

/* True when @name matches ^[A-Za-z0-9._~-]{1,64}$ and is not "." or "..",
 * which URL clients rewrite as dot-segments (RFC 3986 5.2.4), so such a
 * room could never be addressed. */
bool api__room_name_valid(const char *name);

/* Parses a participant id: canonical decimal 1..2^32-1 (no sign, no
 * leading zero). Returns true and stores it in *id. */
bool api__participant_id_parse(const char *s, size_t len, uint32_t *id);

/* The body schemas, defined next to their resources. */
extern const struct api_schema api__room_create_schema;
extern const struct api_schema api__room_update_schema;
extern const struct api_schema api__participant_create_schema;
extern const struct api_schema api__participant_update_schema;

#endif /* API_ROUTES_H */
