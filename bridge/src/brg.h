/*
 * brg.h: the bridge daemon's internal state, shared by its modules.
 *
 *   brg_daemon.c   start-up, shutdown, the mixer's wake-up, housekeeping
 *   brg_rooms.c    rooms: mixer room + persisted record + subscribers
 *   brg_legs.c     legs common to every kind: mixer leg, RTP in/out, JSON
 *   brg_plain.c    plain RTP legs (own UDP port, latching, RTCP)
 *   brg_secure.c   secure legs (handshake, sealed RTP over UDP/TCP 33033)
 *   brg_backend.c  the REST API backend: calls hop from the API threads to
 *                  the loop and back
 *   brg_metrics.c  Prometheus text
 *   brg_overlay.c  the overlay node: room records, GET /v1/overlay
 *
 * Thread: loop for everything here, except where a field says otherwise
 * (the API call queue, which API threads touch under its mutex).
 */
#ifndef BRG_H
#define BRG_H

#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>
#include <uv.h>

#include "api.h"
#include "brg_config.h"
#include "brg_rtp.h"
#include "brg_store.h"
#include "mix_engine.h"

enum {
    BRG_MAX_DATAGRAM = 1500,
    BRG_RTCP_INTERVAL_MS = 5000,
    BRG_MEDIA_TIMEOUT_MS = 30000,   /* a leg silent this long is dropped */
    BRG_LATCH_TIMEOUT_MS = 60000,   /* a plain leg that never sent */
    BRG_API_CALL_TIMEOUT_MS = 3000,
    BRG_MAX_SUBSCRIBERS = 256,
};

enum brg_leg_kind { BRG_LEG_SECURE = 1, BRG_LEG_RTP };
enum brg_transport { BRG_UDP = 1, BRG_TCP };

struct brg;
struct brg_room_rt;
struct ovl_identity;

/* Event subscription of one SSE stream. */
struct brg_sub {
    int64_t id;
    api_event_cb cb;
    void *cb_data;
    struct brg_room_rt *room;
    struct brg_sub *next;
};

/* A live room: the persisted record plus its mixer room. */
struct brg_room_rt {
    struct brg_room rec;           /* as persisted (pin_hash included) */
    struct mix_room *mix;          /* NULL once destroy was posted */
    struct brg *b;
    struct brg_leg *legs;          /* legs in this room (leg->room_next) */
    uint32_t nlegs;
    struct brg_sub *subs;
    uint32_t mix_live;             /* mixer rooms made for this room and not
                                      yet released: a reshape briefly has
                                      two, and each sends ROOM_RELEASED */
    bool dying;                    /* deleted: waiting for ROOM_RELEASED */
    UT_hash_handle hh;             /* by rec.name */
};

/* Outgoing RTP stream state of a leg. */
struct brg_rtp_out {
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts_offset;
    uint8_t pt;
    uint64_t packets, octets;      /* for RTCP SR */
    uint32_t last_ts;              /* RTP timestamp of the last packet sent */
    uint64_t last_ms;              /* and when it was sent (monotonic) */
};

struct brg_leg {
    uint32_t id;                   /* participant id, unique per bridge */
    enum brg_leg_kind kind;
    enum brg_transport transport;
    enum mix_codec codec;
    uint32_t rate;                 /* codec rate for the mixer */
    uint32_t clock;                /* RTP clock (48000 Opus, 8000 G.711) */
    struct brg_room_rt *room;
    struct mix_leg *mix;           /* NULL once destroy was posted */
    struct brg *b;
    char display_name[65];
    bool muted, deaf, suspended;
    double gain_db;
    uint32_t exclude[MIX_MAX_EXCLUDE];
    uint32_t nexclude;
    uint64_t created_ms, last_rx_ms;
    struct brg_rtp_stats rx;       /* RFC 3550 receiver statistics */
    bool rx_started;
    uint32_t rx_ssrc;
    struct brg_rtp_out out;
    uint64_t rx_invalid;           /* malformed or unexpected packets */
    bool dying;
    int pending;                   /* holders until freed: mixer, handles */
    const char *leave_reason;

    /* plain RTP legs */
    uv_udp_t *rtp_sock, *rtcp_sock;  /* rtcp_sock NULL with rtcp-mux */
    uint16_t local_port;
    struct sockaddr_storage remote;  /* where media goes */
    struct sockaddr_storage rtcp_remote;
    bool remote_known;               /* given, or latched */
    bool remote_given;               /* given by the API: source IP checked */
    bool rtcp_mux;
    uint8_t pt_in;                   /* payload type expected */
    uint64_t last_rtcp_ms;

    /* secure legs */
    void *sess;                      /* struct brg_sess (brg_secure.c) */

    struct brg_leg *room_next;
    UT_hash_handle hh;               /* by id */
};

/* One REST call (or subscription change) in flight between an API thread
 * and the loop. */
enum brg_apireq_kind { BRG_REQ_CALL = 0, BRG_REQ_SUBSCRIBE, BRG_REQ_UNSUBSCRIBE };

struct brg_apireq {
    enum brg_apireq_kind kind;
    api_event_cb cb;               /* SUBSCRIBE */
    void *cb_data;
    int64_t sub_id;                /* SUBSCRIBE result, UNSUBSCRIBE input */
    struct api_call call;          /* room string and body owned below */
    char *room;
    json_t *body;
    struct api_result res;
    int refs;                      /* 2: API thread + loop; under q_lock */
    bool done;                     /* under q_lock */
    bool abandoned;                /* under q_lock: the API thread timed out
                                      and no longer reads the answer */
    pthread_cond_t cond;
    struct brg_apireq *next;
};

struct brg_counters {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
    uint64_t rx_invalid, rx_unknown, tx_errors;
    uint64_t legs_joined, legs_left, rooms_created, rooms_deleted;
    uint64_t handshakes_ok, handshakes_failed;
};

struct brg {
    uv_loop_t *loop;
    struct brg_config *cfg;
    struct mix_engine *engine;
    struct brg_store *store;
    struct api_server *api;
    char *token;
    uv_async_t mix_async;          /* engine wake-up */
    uv_async_t api_async;          /* API call queue */
    uv_timer_t tick;               /* 100 ms housekeeping */
    uv_signal_t sigint, sigterm;
    struct brg_room_rt *rooms;     /* hash by name */
    struct brg_leg *legs;          /* hash by id */
    uint32_t next_leg_id;
    uint32_t nlegs;
    int64_t next_sub_id;
    bool stopping;
    int exit_code;

    void *secure;                  /* brg_secure.c state */
    void *overlay;                 /* brg_overlay.c state, NULL when off */

    /* API call queue: API threads push, the loop pops. */
    pthread_mutex_t q_lock;
    struct brg_apireq *q_head, *q_tail;
    /* Subscriptions are added/removed by API threads through the loop too;
     * their callbacks run on the loop. */
    pthread_mutex_t metrics_lock;  /* guards metrics_text */
    char *metrics_text;            /* refreshed by the loop every tick */
    size_t metrics_len;

    struct brg_counters c;
};

/* brg_daemon.c */
uint64_t brg_now_ms(void);

/* brg_rooms.c */
int brg_rooms_load(struct brg *b);
int brg_room_create(struct brg *b, const struct brg_room *rec, bool persist,
                    struct brg_room_rt **out);
struct brg_room_rt *brg_room_find(struct brg *b, const char *name);
void brg_room_destroy(struct brg *b, struct brg_room_rt *r);
json_t *brg_room_json(const struct brg_room_rt *r);
void brg_room_emit(struct brg_room_rt *r, const char *type, json_t *data);
void brg_rooms_api(struct brg *b, const struct api_call *c, struct api_result *res);
int64_t brg_room_subscribe(struct brg *b, const char *room, api_event_cb cb,
                           void *cb_data);
void brg_room_unsubscribe(struct brg *b, int64_t id);
void brg_room_released(struct brg *b, struct brg_room_rt *r);

/* brg_legs.c */
int brg_leg_new(struct brg *b, struct brg_room_rt *r, enum brg_leg_kind kind,
                enum brg_transport tr, enum mix_codec codec, uint32_t rate,
                struct brg_leg **out);
void brg_leg_remove(struct brg *b, struct brg_leg *l, const char *reason);
void brg_leg_released(struct brg *b, struct brg_leg *l);
void brg_leg_joined(struct brg *b, struct brg_leg *l);
void brg_leg_unref(struct brg_leg *l);
struct brg_leg *brg_leg_find(struct brg *b, uint32_t id);
int brg_leg_rx_rtp(struct brg *b, struct brg_leg *l, const uint8_t *buf,
                   size_t len);
void brg_leg_drain(struct brg *b, struct brg_leg *l);
json_t *brg_leg_json(const struct brg_leg *l);
void brg_legs_api(struct brg *b, const struct api_call *c, struct api_result *res);
void brg_api_error(struct api_result *res, int status, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* brg_plain.c */
int brg_plain_create(struct brg *b, struct brg_room_rt *r, const json_t *body,
                     struct brg_leg **out, struct api_result *res);
int brg_plain_send(struct brg *b, struct brg_leg *l, const uint8_t *pkt,
                   size_t len);
void brg_plain_close(struct brg_leg *l);
void brg_plain_tick(struct brg *b, struct brg_leg *l, uint64_t now_ms);

/* brg_secure.c */
int brg_secure_start(struct brg *b);
void brg_secure_stop(struct brg *b);
int brg_secure_send(struct brg *b, struct brg_leg *l, const uint8_t *pkt,
                    size_t len);
void brg_secure_close(struct brg *b, struct brg_leg *l, const char *reason);
void brg_secure_tick(struct brg *b, uint64_t now_ms);
void brg_secure_free(struct brg *b);
/* The bridge's Ed25519 identity (<state_dir>/identity.key), loaded by
 * brg_secure_start; NULL before. The overlay node uses it too. */
const struct ovl_identity *brg_secure_identity(struct brg *b);

/* brg_backend.c */
void brg_backend_init(struct brg *b, struct api_backend *be);
void brg_backend_drain(struct brg *b);
void brg_backend_fail_all(struct brg *b);

/* brg_metrics.c */
void brg_metrics_refresh(struct brg *b);

#endif /* BRG_H */
