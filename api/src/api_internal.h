/*
 * api_internal.h: what the files of the api module share: the server
 * object, the per-request state, and the response helpers.
 *
 * Thread: "api" (libmicrohttpd's worker threads) unless a field says
 * otherwise.
 */
#ifndef API_INTERNAL_H
#define API_INTERNAL_H

#include "api.h"
#include "api_routes.h"
#include "api_schema.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum {
    API_DEFAULT_MAX_BODY = 65536,
    API_DEFAULT_MAX_CONNECTIONS = 64,
    API_DEFAULT_TIMEOUT_S = 30,
    API_DEFAULT_PER_IP = 16,
    API_DEFAULT_RATE_PER_S = 100,
    API_DEFAULT_RATE_BURST = 200,
    API_DEFAULT_THREADS = 2,
    API_DEFAULT_KEEPALIVE_MS = 15000,
    API_DEFAULT_SSE_QUEUE = 256,
    API_MAX_THREADS = 64,
    /* Counted statuses: 100..599. */
    API_STATUS_MIN = 100,
    API_STATUS_MAX = 599,
    /* Per-IP token buckets: a fixed table, probed a few slots deep. */
    API_RATE_SLOTS = 1024,
    API_RATE_PROBE = 8,
    /* A request refused on its headers whose body is at most this long is
     * still read (and discarded) before the answer, so the client sees the
     * answer instead of a reset; a longer one is answered at once and the
     * connection closed. */
    API_DRAIN_MAX = 1 << 20,
    API_TOKEN_HASH_LEN = 32,
};

/* One client IP's token bucket. Private to api_server.c. */
struct api_rate_slot {
    unsigned char addr[16];          /* IPv4 as v4-mapped IPv6 */
    bool used;
    double tokens;
    uint64_t last_ns;                /* CLOCK_MONOTONIC of the last refill */
};

struct api_events;

struct api_server {
    struct api_config cfg;           /* read-only: copy, defaults applied;
                                        cfg.token is NULL (only its hash is kept) */
    struct api_backend be;           /* read-only */
    struct MHD_Daemon *daemon;
    uint16_t port;                   /* read-only after start */
    unsigned char token_hash[API_TOKEN_HASH_LEN]; /* BLAKE2b of the token */
    const char *openapi;             /* the document served */
    size_t openapi_len;
    char *openapi_owned;             /* set when read from cfg.openapi_path */
    atomic_bool stopping;            /* Thread: any */
    /* Thread: any. Responses sent, by status (index status - 100). */
    atomic_uint_fast64_t status_count[API_STATUS_MAX - API_STATUS_MIN + 1];
    atomic_uint_fast64_t rate_limited;
    pthread_mutex_t rate_lock;       /* guards rate[] (workers share it) */
    struct api_rate_slot rate[API_RATE_SLOTS];
    struct api_events *events;       /* SSE subscribers and keep-alive thread */
};

/* Per-request state, MHD's con_cls. Freed when MHD completes the request. */
struct api_req {
    struct MHD_Connection *conn;
    const struct api_route *route;
    char room[API_ROOM_NAME_MAX + 1];
    uint32_t participant;
    char *body;                      /* accumulated body (not NUL-ended) */
    size_t body_len;
    bool body_too_large;             /* the body went over cfg.max_body */
    bool answered;
    /* A refusal decided from the headers, sent once the body is drained. */
    struct MHD_Response *deferred;
    unsigned deferred_status;
    json_t *json;                    /* the validated body, defaults applied */
};

/* Sends @resp (which this call destroys) with @status, and counts it. */
enum MHD_Result api__send(struct api_server *s, struct api_req *r, unsigned status,
                          struct MHD_Response *resp);

/* Sends @body (may be NULL: empty body) as application/json. @location,
 * when not NULL, becomes the Location header (for 201). */
enum MHD_Result api__send_json(struct api_server *s, struct api_req *r, unsigned status,
                               const json_t *body, const char *location);

/* Builds an RFC 9457 application/problem+json response. @detail is a
 * sentence for humans (sanitised to printable ASCII); @field, when not
 * NULL or empty, becomes the "field" extension member (422). Returns NULL
 * when out of memory. */
struct MHD_Response *api__problem_new(unsigned status, const char *detail, const char *field);

/* Builds and sends a problem response. */
enum MHD_Result api__send_problem(struct api_server *s, struct api_req *r, unsigned status,
                                  const char *detail, const char *field);

/* Sends a backend result (success body or problem), consuming res->body.
 * @location as for api__send_json, used only for a 201. */
enum MHD_Result api__send_result(struct api_server *s, struct api_req *r,
                                 struct api_result *res, const char *location);

/* Calls the backend for the matched route with the request's room,
 * participant and validated body. Always fills @res. */
void api__backend_call(struct api_server *s, struct api_req *r, struct api_result *res);

/* Route handlers (one file per resource). */
enum MHD_Result api__health_get(struct api_server *s, struct api_req *r);
enum MHD_Result api__metrics_get(struct api_server *s, struct api_req *r);
enum MHD_Result api__openapi_get(struct api_server *s, struct api_req *r);
enum MHD_Result api__overlay_get(struct api_server *s, struct api_req *r);
enum MHD_Result api__rooms_handle(struct api_server *s, struct api_req *r);
enum MHD_Result api__participants_handle(struct api_server *s, struct api_req *r);
enum MHD_Result api__events_get(struct api_server *s, struct api_req *r);

/* SSE machinery (api_events.c). start: 0 or negative errno. stop: ends
 * every stream (resuming suspended connections, which MHD requires before
 * MHD_stop_daemon) and joins the keep-alive thread. */
int api__events_start(struct api_server *s);
void api__events_stop(struct api_server *s);
void api__events_free(struct api_server *s);
unsigned api__events_count(struct api_server *s, uint64_t *dropped);

/* The OpenAPI document compiled in (generated from docs/openapi.json). */
extern const unsigned char api__openapi_doc[];
extern const size_t api__openapi_doc_len;

#endif /* API_INTERNAL_H */
