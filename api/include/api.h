/*
 * api.h: the REST API of the bridge (libmicrohttpd + jansson).
 *
 * The api module owns HTTP: routing, bearer-token authentication, body and
 * connection limits, request validation against per-route schema tables,
 * RFC 9457 problem+json errors, Server-Sent Events framing, the OpenAPI
 * document, and its own request counters. It knows nothing of rooms or
 * mixing: every validated request becomes one call through the narrow
 * struct api_backend below, which the bridge implements (and tests fake).
 *
 * Threads: handlers run on libmicrohttpd's thread(s) ("api"). Backend
 * functions are called from those threads and may block for a bounded time
 * (the bridge posts the call to its loop and waits for the answer).
 */
#ifndef API_H
#define API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One operation per route. */
enum api_op {
    API_OP_ROOMS_LIST = 1,       /* GET    /v1/rooms */
    API_OP_ROOM_CREATE,          /* POST   /v1/rooms                      body */
    API_OP_ROOM_GET,             /* GET    /v1/rooms/{room} */
    API_OP_ROOM_UPDATE,          /* PATCH  /v1/rooms/{room}               body */
    API_OP_ROOM_DELETE,          /* DELETE /v1/rooms/{room} */
    API_OP_PARTICIPANTS_LIST,    /* GET    /v1/rooms/{room}/participants */
    API_OP_PARTICIPANT_CREATE,   /* POST   /v1/rooms/{room}/participants  body */
    API_OP_PARTICIPANT_GET,      /* GET    /v1/rooms/{room}/participants/{id} */
    API_OP_PARTICIPANT_UPDATE,   /* PATCH  /v1/rooms/{room}/participants/{id} body */
    API_OP_PARTICIPANT_DELETE,   /* DELETE /v1/rooms/{room}/participants/{id} */
    API_OP_OVERLAY_GET,          /* GET    /v1/overlay */
};

/* A validated request. Strings and body are owned by the api module and
 * valid for the duration of the call. */
struct api_call {
    enum api_op op;
    const char *room;            /* URL-safe room name, or NULL */
    uint32_t participant;        /* participant id, or 0 */
    const json_t *body;          /* validated JSON object, or NULL */
};

/* The backend's answer. On success, status is 200/201/204 and body (owned
 * by the result, may be NULL) is the JSON to send. On failure, status is the
 * HTTP error status and detail a human-readable sentence (no secrets);
 * field names the offending JSON field for 422. */
struct api_result {
    int status;
    json_t *body;
    char detail[256];
    char field[64];
};

/* An event for Server-Sent Events subscribers: type is the SSE event name
 * (joined, left, talking, stopped-talking, muted, updated, destroyed) and
 * data a JSON object (owned by the caller of the callback; the api module
 * serialises it before returning). */
typedef void (*api_event_cb)(const char *type, const json_t *data, void *cb_data);

struct api_backend {
    void *ctx;
    /* Executes one call. Must always fill @res. */
    void (*call)(void *ctx, const struct api_call *call, struct api_result *res);
    /* Subscribes to the events of @room: @cb may be called from any thread
     * until unsubscribe returns; the subscription ends by itself after a
     * "destroyed" event. Returns a positive id, or -ENOENT when the room does
     * not exist, or another negative errno. */
    int64_t (*subscribe)(void *ctx, const char *room, api_event_cb cb, void *cb_data);
    void (*unsubscribe)(void *ctx, int64_t id);
    /* Appends the backend's Prometheus text-format metrics to @out
     * (jansson-free, plain text). Returns 0 or a negative errno.
     * The api module calls it with *out == NULL and *len == 0; the backend
     * sets *out to a malloc()ed buffer of *len bytes (it may realloc() the
     * NULL it was given), which the api module free()s. */
    int (*metrics)(void *ctx, char **out, size_t *len);
};

/* Contract details the api module relies on (clarifications, not changes):
 *  - call is required; subscribe, unsubscribe and metrics may be NULL (the
 *    events route then answers 503, /metrics shows only the api's counters).
 *  - unsubscribe is always called exactly once for every successful
 *    subscribe, even after "destroyed" ended the subscription by itself; it
 *    must then be a no-op, and when it returns no callback may be running
 *    or start for that id (the api module frees @cb_data right after).
 *  - For API_OP_ROOM_CREATE and API_OP_PARTICIPANT_CREATE the body carries
 *    every field that has a default (see docs/openapi.json), defaults
 *    filled in; optional fields without a default (pin, remote,
 *    display_name) appear only when the client sent them. For the update
 *    operations the body holds only the fields sent (at least one).
 *  - Room responses are checked: a "pin" member of the top-level object,
 *    or of an object in a top-level array or in an array member of the
 *    top-level object ({"rooms": [...]}), is removed before sending,
 *    because the PIN is write-only.
 *  - Response shapes are documented in docs/openapi.json (lists are
 *    wrapped: {"rooms": [...]}, {"participants": [...]}). */

struct api_config {
    const char *bind_addr;       /* e.g. "127.0.0.1" */
    uint16_t port;               /* e.g. 8080; 0 picks a free port */
    const char *token;           /* bearer token (required, non-empty) */
    size_t max_body;             /* bytes (default 65536) */
    unsigned max_connections;    /* (default 64) */
    unsigned timeout_s;          /* idle connection timeout (default 30) */
    const char *openapi_path;    /* the OpenAPI document to serve, or NULL
                                    for the copy compiled in */
    /* Extensions (zero means the default, so existing initialisers keep
     * working): */
    unsigned per_ip_connections; /* connections per client IP (default 16) */
    unsigned rate_per_s;         /* requests per second per client IP, the
                                    token bucket's refill (default 100);
                                    API_RATE_UNLIMITED disables the limit */
    unsigned rate_burst;         /* the bucket's size (default 200) */
    unsigned threads;            /* HTTP worker threads (default 2) */
    unsigned sse_keepalive_ms;   /* SSE comment keep-alive (default 15000) */
    unsigned sse_queue_max;      /* events queued per SSE subscriber before
                                    it is dropped as too slow (default 256) */
};

/* rate_per_s value that turns the per-IP rate limit off. */
#define API_RATE_UNLIMITED UINT32_MAX

struct api_server;

/* Starts the HTTP server. Returns 0 or a negative errno. */
int api_server_start(const struct api_config *cfg, const struct api_backend *be,
                     struct api_server **out);

/* The port actually bound (useful with port 0). */
uint16_t api_server_port(const struct api_server *s);

/* Stops accepting, closes SSE streams, joins the threads, frees. */
void api_server_stop(struct api_server *s);

#endif /* API_H */
