/*
 * lg_http.h: chorus-loadgen's REST API client. A deliberately small,
 * blocking HTTP/1.1 client (one connection per request, "Connection:
 * close") for the few calls a load run makes before and after its media
 * phase: create or resize the room, add and remove plain RTP legs, read
 * /metrics. It is not a general HTTP client: the server is the bridge's
 * own API on a literal IP address (docs/api.md).
 *
 * Thread: the caller's (blocking). The load generator calls it from its
 * loop thread only outside the measured window, or at its two edges.
 */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    LG_HTTP_TIMEOUT_MS = 10000,  /* connect, send and receive, each */
    LG_HTTP_MAX_BODY = 4 << 20,  /* a larger answer is refused */
    LG_HTTP_RETRIES = 8,         /* answers 429 / 503 retried this often */
    LG_API_MIN_GAP_US = 11000,   /* <= 90 requests/s: under the API's
                                    default 100/s per-IP bucket */
};

/* Where the API is and how to authenticate. Caller-owned strings. */
struct lg_api {
    char host[64];               /* IP literal, no brackets */
    uint16_t port;
    const char *token;           /* bearer token, or NULL */
    uint64_t last_request_us;    /* private: pacing */
    uint64_t requests;           /* read-only: requests sent */
    uint64_t throttled;          /* read-only: 429 answers seen */
};

/* One answer. body is malloc'd and NUL-terminated (free it). */
struct lg_http_resp {
    int status;
    char *body;
    size_t body_len;
};

/* Parses "http://HOST:PORT" (HOST an IPv4 or bracketed IPv6 literal; port
 * 80 when absent; a trailing "/" is ignored) into @api. Returns 0 or
 * -EINVAL. */
int lg_api_parse(struct lg_api *api, const char *url);

/*
 * Sends one request and reads the whole answer into @out. @body (may be
 * NULL) is sent as application/json. Requests are paced to at most one per
 * LG_API_MIN_GAP_US, and an answer 429 or 503 is retried after its
 * Retry-After (at most LG_HTTP_RETRIES times). Returns 0 with out->status
 * set (any status), or a negative errno when no answer could be read
 * (-ECONNREFUSED, -ETIMEDOUT, -EPROTO for a malformed answer, -EFBIG).
 */
int lg_http_request(struct lg_api *api, const char *method, const char *path,
                    const char *body, struct lg_http_resp *out);

void lg_http_resp_free(struct lg_http_resp *r);

/*
 * Makes sure room @room exists with room for @max_participants and with
 * @talkers mixed talkers: creates it (*created = true) or PATCHes
 * max_participants when it is too small. Returns 0, or a negative errno
 * with a message in @err.
 */
int lg_api_room_ensure(struct lg_api *api, const char *room,
                       unsigned max_participants, unsigned talkers,
                       bool *created, char *err, size_t errlen);

/* DELETE /v1/rooms/@room. Returns 0 (204 or 404) or a negative errno. */
int lg_api_room_delete(struct lg_api *api, const char *room);

/*
 * Adds a plain RTP Opus leg whose media goes to 127.0.0.1:@remote_port.
 * Stores the participant id and the bridge's local port. Returns 0, or a
 * negative errno with a message in @err (the status and detail of the
 * refusal).
 */
int lg_api_participant_add(struct lg_api *api, const char *room,
                           const char *remote_ip, uint16_t remote_port,
                           uint32_t *id, uint16_t *local_port,
                           char *err, size_t errlen);

/* DELETE one participant. Returns 0 (204 or 404) or a negative errno. */
int lg_api_participant_delete(struct lg_api *api, const char *room,
                              uint32_t id);

/* The /metrics series the load generator reads (counters, as doubles). */
struct lg_metrics {
    bool ok;                     /* the fetch worked */
    double missed_deadlines;     /* chorus_mixer_missed_deadlines_total */
    double cycles;               /* chorus_mixer_cycles_total */
    double max_cycle_us;         /* chorus_mixer_max_cycle_microseconds */
    double rx_packets, tx_packets, tx_errors;
    double rx_invalid, rx_unknown;
    double lost, late, concealed;
    double handshakes_ok, handshakes_failed;
    double encodes;
    double legs;
};

/* GET /metrics into @m (m->ok false when it failed). */
void lg_api_metrics(struct lg_api *api, struct lg_metrics *m);

#endif /* LG_HTTP_H */
