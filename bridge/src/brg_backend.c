/*
 * brg_backend.c: the REST API's backend. The API module calls it from its
 * own threads; rooms and legs belong to the loop, so every call hops to the
 * loop through a small mutex-protected queue and a uv_async, and the API
 * thread waits (bounded) for the answer. A call that times out is answered
 * 503 and abandoned: the request is reference-counted so that whichever side
 * finishes last frees it.
 *
 * Metrics are different: the loop refreshes a text snapshot every tick and
 * the API thread copies it under a mutex, so a scrape never waits on the loop.
 *
 * Thread: as marked per function.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <time.h>

#include "brg.h"
#include "brg_log.h"
#include "brg_overlay.h"

static void req_unref(struct brg *b, struct brg_apireq *q)
{
    bool last;

    pthread_mutex_lock(&b->q_lock);
    last = --q->refs == 0;
    pthread_mutex_unlock(&b->q_lock);
    if (!last)
        return;
    pthread_cond_destroy(&q->cond);
    if (q->res.body)
        json_decref(q->res.body);
    if (q->body)
        json_decref(q->body);
    free(q->room);
    free(q);
}

/* Thread: api. A request with one reference (the caller's). */
static struct brg_apireq *req_new(enum brg_apireq_kind kind)
{
    struct brg_apireq *q = calloc(1, sizeof(*q));
    pthread_condattr_t ca;

    if (!q)
        return NULL;
    q->kind = kind;
    q->refs = 1;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

/* Thread: api. Queues @q (created with refs = 1, the caller's) for the
 * loop and waits for it; fills @res (503 on time-out or shutdown). The
 * caller still owns its reference afterwards and drops it with req_unref. */
static void submit(struct brg *b, struct brg_apireq *q, struct api_result *res)
{
    struct timespec deadline;
    int rc = 0;

    pthread_mutex_lock(&b->q_lock);
    if (b->stopping) {
        /* be_unsubscribe saw stopping false, but it turned true since: the
         * loop will never run this request, and the API frees cb_data as
         * soon as we return. Remove the subscription here, as be_unsubscribe
         * does in the same state (under q_lock, the loop emits nothing). */
        if (q->kind == BRG_REQ_UNSUBSCRIBE)
            brg_room_unsubscribe(b, q->sub_id);
        pthread_mutex_unlock(&b->q_lock);
        brg_api_error(res, 503, NULL, "the bridge is shutting down");
        return;
    }
    q->refs++; /* the loop's */
    if (b->q_tail)
        b->q_tail->next = q;
    else
        b->q_head = q;
    b->q_tail = q;
    pthread_mutex_unlock(&b->q_lock);
    uv_async_send(&b->api_async);

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += BRG_API_CALL_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&b->q_lock);
    while (!q->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&q->cond, &b->q_lock, &deadline);
    if (q->done) {
        *res = q->res;
        q->res.body = NULL; /* handed over to the API module */
    } else {
        q->abandoned = true; /* answer() undoes what nobody will read */
    }
    pthread_mutex_unlock(&b->q_lock);
    if (!q->done)
        brg_api_error(res, 503, NULL, "the bridge did not answer in time");
}

/* Thread: api. */
static void be_call(void *ctx, const struct api_call *call, struct api_result *res)
{
    struct brg *b = ctx;
    struct brg_apireq *q = req_new(BRG_REQ_CALL);

    memset(res, 0, sizeof(*res));
    if (!q) {
        brg_api_error(res, 503, NULL, "out of memory");
        return;
    }
    q->call = *call;
    if (call->room) {
        q->room = strdup(call->room);
        q->call.room = q->room;
    }
    if (call->body) {
        json_t *pin;

        /* A deep copy: the loop may still read it after we gave up. */
        q->body = json_deep_copy(call->body);
        q->call.body = q->body;
        /* crypto_pwhash is slow on purpose: hash the PIN here, on the API
         * thread, and hand the loop only the hash. */
        pin = json_object_get(q->body, "pin");
        if (json_is_string(pin)) {
            char hash[BRG_PIN_HASH_MAX];
            int rc = brg_store_pin_hash(hash, json_string_value(pin));

            json_object_del(q->body, "pin");
            if (rc) {
                req_unref(b, q);
                brg_api_error(res, 422, "pin", "the PIN cannot be used");
                return;
            }
            json_object_set_new(q->body, "pin_hash", json_string(hash));
            sodium_memzero(hash, sizeof(hash));
        }
    }
    submit(b, q, res);
    req_unref(b, q);
}

/* Thread: loop. Takes the oldest queued request, or NULL. */
static struct brg_apireq *queue_pop(struct brg *b)
{
    struct brg_apireq *q;

    pthread_mutex_lock(&b->q_lock);
    q = b->q_head;
    if (q) {
        b->q_head = q->next;
        if (!b->q_head)
            b->q_tail = NULL;
    }
    pthread_mutex_unlock(&b->q_lock);
    return q;
}

/* Thread: loop. Hands the answer in q->res to the waiting API thread and
 * drops the loop's reference. */
static void answer(struct brg *b, struct brg_apireq *q)
{
    bool abandoned;

    pthread_mutex_lock(&b->q_lock);
    q->done = true;
    abandoned = q->abandoned;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&b->q_lock);
    /* A SUBSCRIBE that timed out on the API side: be_subscribe returned an
     * error and the API freed cb_data, so the subscription just made must
     * go before any event can reach it (nothing is emitted in between). */
    if (abandoned && q->kind == BRG_REQ_SUBSCRIBE && q->sub_id > 0)
        brg_room_unsubscribe(b, q->sub_id);
    req_unref(b, q);
}

static void dispatch(struct brg *b, struct brg_apireq *q)
{
    memset(&q->res, 0, sizeof(q->res));
    switch (q->kind) {
    case BRG_REQ_SUBSCRIBE:
        q->sub_id = brg_room_subscribe(b, q->call.room, q->cb, q->cb_data);
        q->res.status = 200;
        return;
    case BRG_REQ_UNSUBSCRIBE:
        brg_room_unsubscribe(b, q->sub_id);
        q->res.status = 204;
        return;
    case BRG_REQ_CALL:
        break;
    }
    switch (q->call.op) {
    case API_OP_ROOMS_LIST:
    case API_OP_ROOM_CREATE:
    case API_OP_ROOM_GET:
    case API_OP_ROOM_UPDATE:
    case API_OP_ROOM_DELETE:
        brg_rooms_api(b, &q->call, &q->res);
        break;
    case API_OP_PARTICIPANTS_LIST:
    case API_OP_PARTICIPANT_CREATE:
    case API_OP_PARTICIPANT_GET:
    case API_OP_PARTICIPANT_UPDATE:
    case API_OP_PARTICIPANT_DELETE:
        brg_legs_api(b, &q->call, &q->res);
        break;
    case API_OP_OVERLAY_GET:
        brg_overlay_api(b, &q->res);
        break;
    default:
        brg_api_error(&q->res, 404, NULL, "unknown operation");
        break;
    }
}

/* Thread: loop. Runs every queued call. */
void brg_backend_drain(struct brg *b)
{
    struct brg_apireq *q;

    while ((q = queue_pop(b))) {
        dispatch(b, q);
        answer(b, q);
    }
}

/* Thread: loop. At shutdown: answer whatever is still queued with 503. */
void brg_backend_fail_all(struct brg *b)
{
    struct brg_apireq *q;

    pthread_mutex_lock(&b->q_lock);
    b->stopping = true;
    pthread_mutex_unlock(&b->q_lock);
    while ((q = queue_pop(b))) {
        /* An UNSUBSCRIBE must still happen: the API frees cb_data once it
         * is answered, and the legs removed next emit "left" events. Under
         * q_lock, like the direct removals of API threads now stopping. */
        if (q->kind == BRG_REQ_UNSUBSCRIBE) {
            pthread_mutex_lock(&b->q_lock);
            brg_room_unsubscribe(b, q->sub_id);
            pthread_mutex_unlock(&b->q_lock);
        }
        brg_api_error(&q->res, 503, NULL, "the bridge is shutting down");
        answer(b, q);
    }
}

/* Thread: api. Subscription changes go through the loop like calls, so
 * the subscriber lists stay loop-only and callbacks only ever run on the
 * loop: once unsubscribe has returned, no callback can follow. */
static int64_t be_subscribe(void *ctx, const char *room, api_event_cb cb,
                            void *cb_data)
{
    struct brg *b = ctx;
    struct brg_apireq *q = req_new(BRG_REQ_SUBSCRIBE);
    struct api_result res = {0};
    int64_t id;

    if (!q)
        return -ENOMEM;
    q->room = strdup(room);
    q->call.room = q->room;
    q->cb = cb;
    q->cb_data = cb_data;
    q->sub_id = -EAGAIN;
    submit(b, q, &res);
    pthread_mutex_lock(&b->q_lock);
    id = q->done ? q->sub_id : -ETIMEDOUT;
    pthread_mutex_unlock(&b->q_lock);
    req_unref(b, q);
    return id;
}

/* Thread: api. */
static void be_unsubscribe(void *ctx, int64_t id)
{
    struct brg *b = ctx;
    struct brg_apireq *q;
    struct api_result res = {0};
    bool stopping;

    pthread_mutex_lock(&b->q_lock);
    stopping = b->stopping;
    if (stopping)
        brg_room_unsubscribe(b, id);
    pthread_mutex_unlock(&b->q_lock);
    /* During shutdown the loop is the thread stopping the API server and
     * cannot answer; it emits nothing any more, so removing directly is safe. */
    if (stopping)
        return;
    q = req_new(BRG_REQ_UNSUBSCRIBE);
    if (!q)
        return;
    q->sub_id = id;
    submit(b, q, &res);
    /* The contract (api.h) is that no callback runs once we return, and
     * the API frees cb_data right after: past submit's time-out, keep
     * waiting. The loop answers every queued request, at the latest in
     * brg_backend_fail_all; a request refused as stopping was never queued
     * (done stays false) but submit removed the subscription itself. */
    pthread_mutex_lock(&b->q_lock);
    while (!q->done && q->refs > 1)
        pthread_cond_wait(&q->cond, &b->q_lock);
    pthread_mutex_unlock(&b->q_lock);
    req_unref(b, q);
}

/* Thread: api. */
static int be_metrics(void *ctx, char **out, size_t *len)
{
    struct brg *b = ctx;
    int rc = 0;

    pthread_mutex_lock(&b->metrics_lock);
    *out = b->metrics_text ? strndup(b->metrics_text, b->metrics_len) : strdup("");
    *len = b->metrics_text ? b->metrics_len : 0;
    if (!*out)
        rc = -ENOMEM;
    pthread_mutex_unlock(&b->metrics_lock);
    return rc;
}

void brg_backend_init(struct brg *b, struct api_backend *be)
{
    memset(be, 0, sizeof(*be));
    be->ctx = b;
    be->call = be_call;
    be->subscribe = be_subscribe;
    be->unsubscribe = be_unsubscribe;
    be->metrics = be_metrics;
}

void brg_api_error(struct api_result *res, int status, const char *field,
                   const char *fmt, ...)
{
    va_list ap;

    res->status = status;
    if (res->body) {
        json_decref(res->body);
        res->body = NULL;
    }
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    snprintf(res->field, sizeof(res->field), "%s", field ? field : "");
}
