/*
 * fake_backend.h: an in-memory struct api_backend for the api tests.
 *
 * Rooms and participants live in jansson objects under one mutex; every
 * call is recorded (op and a copy of the body) so tests can check what
 * the api module passed on. Events are pushed with fake_backend_emit,
 * from the test's thread, like the bridge's loop would.
 *
 * Thread: any (everything takes fb->lock).
 */
#ifndef FAKE_BACKEND_H
#define FAKE_BACKEND_H

#include "api.h"

#include <pthread.h>
#include <stdbool.h>

enum { FAKE_MAX_SUBS = 32 };

struct fake_sub {
    int64_t id;                  /* 0: free slot */
    char room[80];
    api_event_cb cb;
    void *cb_data;
};

struct fake_backend {
    pthread_mutex_t lock;
    json_t *rooms;               /* name -> room object (with "pin" kept!) */
    json_t *parts;               /* name -> { "id" -> participant } */
    uint32_t next_id;
    struct fake_sub subs[FAKE_MAX_SUBS];
    int64_t next_sub;
    int n_subs;                  /* active subscriptions */
    int n_unsubscribed;          /* unsubscribe calls seen */
    /* Knobs. */
    int burst_on_subscribe;      /* events sent from inside subscribe */
    bool destroy_on_subscribe;   /* send "destroyed" from inside subscribe */
    bool overlay_off;            /* GET /v1/overlay answers 503, as a bridge
                                    started with overlay = false does */
    /* Records. */
    enum api_op last_op;
    json_t *last_body;           /* copy of the last body, or NULL */
    uint32_t last_participant;
};

void fake_backend_init(struct fake_backend *fb);
void fake_backend_fini(struct fake_backend *fb);
struct api_backend fake_backend_api(struct fake_backend *fb);

/* Adds room @name with one participant (id 1), bypassing the API. */
void fake_backend_seed(struct fake_backend *fb, const char *name);

/* Sends an event to the subscribers of @room; returns how many got it. */
int fake_backend_emit(struct fake_backend *fb, const char *room, const char *type,
                      json_t *data);

/* Waits until n_subs == @n; false after @timeout_ms. */
bool fake_backend_wait_subs(struct fake_backend *fb, int n, int timeout_ms);

/* Copies of the records, taken under the lock. */
enum api_op fake_backend_last_op(struct fake_backend *fb);
json_t *fake_backend_last_body(struct fake_backend *fb);    /* new reference or NULL */
int fake_backend_unsubscribed(struct fake_backend *fb);

#endif /* FAKE_BACKEND_H */
