/*
 * fake_backend.c: see fake_backend.h. Deliberately simple; it answers
 * with the statuses the real bridge will use (201, 204, 404, 409, 503)
 * so the api module's handling of each can be observed.
 */
#include "fake_backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void set_error(struct api_result *res, int status, const char *detail)
{
    res->status = status;
    snprintf(res->detail, sizeof(res->detail), "%s", detail);
}

static void room_count(struct fake_backend *fb, const char *name, json_t *room)
{
    json_t *parts = json_object_get(fb->parts, name);

    json_object_set_new(room, "participants", json_integer((json_int_t)json_object_size(parts)));
}

static void room_create(struct fake_backend *fb, const json_t *body, struct api_result *res)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    json_t *room;

    if (strcmp(name, "unavailable") == 0) {
        set_error(res, 503, "the bridge is busy");
        return;
    }
    if (json_object_get(fb->rooms, name)) {
        set_error(res, 409, "a room with this name exists");
        return;
    }
    room = json_deep_copy(body);
    json_object_set_new(room, "pin_required", json_boolean(json_object_get(body, "pin") != NULL));
    json_object_set_new(room, "participants", json_integer(0));
    json_object_set_new(room, "created_at", json_string("2024-05-01T12:00:00Z"));
    json_object_set(fb->rooms, name, room);
    json_object_set_new(fb->parts, name, json_object());
    res->status = 201;
    res->body = room;   /* keeps "pin": the api module must strip it */
}

static void room_update(json_t *room, const json_t *body, struct api_result *res)
{
    json_object_update(room, (json_t *)body);
    if (json_object_get(body, "pin"))
        json_object_set_new(room, "pin_required", json_true());
    res->status = 200;
    res->body = json_deep_copy(room);
}

static void participant_create(struct fake_backend *fb, json_t *parts, const json_t *body,
                               struct api_result *res)
{
    char key[16];
    uint32_t id = fb->next_id++;
    /* The shape of brg_leg_json, trimmed. */
    json_t *p = json_pack("{s:I, s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:{s:I, s:I}, s:I, s:I, s:I}",
                          "id", (json_int_t)id, "kind", "rtp", "transport", "udp",
                          "path", "direct", "talking", 0, "muted", 0, "deaf", 0,
                          "jitter_buffer_ms", (json_int_t)40, "loss", "lost", (json_int_t)0,
                          "late", (json_int_t)0, "packets_in", (json_int_t)0,
                          "packets_out", (json_int_t)0, "local_port", (json_int_t)(40000 + id));

    json_object_update(p, (json_t *)body);
    snprintf(key, sizeof(key), "%u", id);
    json_object_set(parts, key, p);
    res->status = 201;
    res->body = p;
}

static void participants_call(struct fake_backend *fb, const struct api_call *call,
                              struct api_result *res)
{
    json_t *parts = json_object_get(fb->parts, call->room);
    json_t *p;
    char key[16];
    const char *k;
    json_t *v;

    if (!parts) {
        set_error(res, 404, "no such room");
        return;
    }
    if (call->op == API_OP_PARTICIPANTS_LIST) {
        json_t *list = json_array();

        json_object_foreach(parts, k, v)
            json_array_append(list, v);
        res->status = 200;
        res->body = json_pack("{s:o}", "participants", list);
        return;
    }
    if (call->op == API_OP_PARTICIPANT_CREATE) {
        participant_create(fb, parts, call->body, res);
        return;
    }
    snprintf(key, sizeof(key), "%u", call->participant);
    p = json_object_get(parts, key);
    if (!p) {
        set_error(res, 404, "no such participant");
        return;
    }
    if (call->op == API_OP_PARTICIPANT_GET) {
        res->status = 200;
        res->body = json_deep_copy(p);
    } else if (call->op == API_OP_PARTICIPANT_UPDATE) {
        json_object_update(p, (json_t *)call->body);
        res->status = 200;
        res->body = json_deep_copy(p);
    } else {
        json_object_del(parts, key);
        res->status = 204;
    }
}

/* Lock held. */
static void emit_locked(struct fake_backend *fb, const char *room, const char *type,
                        json_t *data, int *n)
{
    for (int i = 0; i < FAKE_MAX_SUBS; i++) {
        struct fake_sub *s = &fb->subs[i];

        if (s->id && strcmp(s->room, room) == 0) {
            s->cb(type, data, s->cb_data);
            (*n)++;
            if (strcmp(type, "destroyed") == 0) {
                /* The subscription ends by itself, as the contract says. */
                s->id = 0;
                fb->n_subs--;
            }
        }
    }
}

static void rooms_call(struct fake_backend *fb, const struct api_call *call,
                       struct api_result *res)
{
    json_t *room = call->room ? json_object_get(fb->rooms, call->room) : NULL;
    const char *k;
    json_t *v;
    int n = 0;

    switch (call->op) {
    case API_OP_ROOMS_LIST: {
        json_t *list = json_array();

        json_object_foreach(fb->rooms, k, v) {
            room_count(fb, k, v);
            json_array_append(list, v);
        }
        res->status = 200;
        res->body = json_pack("{s:o}", "rooms", list);
        return;
    }
    case API_OP_ROOM_CREATE:
        room_create(fb, call->body, res);
        return;
    default:
        break;
    }
    if (!room) {
        set_error(res, 404, "no such room");
        return;
    }
    room_count(fb, call->room, room);
    if (call->op == API_OP_ROOM_GET) {
        res->status = 200;
        res->body = json_deep_copy(room);
    } else if (call->op == API_OP_ROOM_UPDATE) {
        room_update(room, call->body, res);
    } else {
        json_t *data = json_pack("{s:s}", "room", call->room);

        emit_locked(fb, call->room, "destroyed", data, &n);
        json_decref(data);
        json_object_del(fb->rooms, call->room);
        json_object_del(fb->parts, call->room);
        res->status = 204;
    }
}

static void fake_call(void *ctx, const struct api_call *call, struct api_result *res)
{
    struct fake_backend *fb = ctx;

    pthread_mutex_lock(&fb->lock);
    fb->last_op = call->op;
    json_decref(fb->last_body);
    fb->last_body = call->body ? json_deep_copy(call->body) : NULL;
    fb->last_participant = call->participant;
    switch (call->op) {
    case API_OP_OVERLAY_GET:
        if (fb->overlay_off) {
            res->status = 503;
            snprintf(res->detail, sizeof(res->detail),
                     "the overlay is disabled on this bridge (overlay = false)");
            break;
        }
        res->status = 200;
        res->body = json_pack("{s:s, s:b}", "node_id", "fake", "supernode", 0);
        break;
    case API_OP_PARTICIPANTS_LIST:
    case API_OP_PARTICIPANT_CREATE:
    case API_OP_PARTICIPANT_GET:
    case API_OP_PARTICIPANT_UPDATE:
    case API_OP_PARTICIPANT_DELETE:
        participants_call(fb, call, res);
        break;
    default:
        rooms_call(fb, call, res);
        break;
    }
    pthread_mutex_unlock(&fb->lock);
}

static int64_t fake_subscribe(void *ctx, const char *room, api_event_cb cb, void *cb_data)
{
    struct fake_backend *fb = ctx;
    int64_t id = -ENOENT;
    int n = 0;

    pthread_mutex_lock(&fb->lock);
    if (!json_object_get(fb->rooms, room))
        goto out_unlock;
    id = -EBUSY;
    for (int i = 0; i < FAKE_MAX_SUBS; i++) {
        struct fake_sub *s = &fb->subs[i];

        if (s->id)
            continue;
        s->id = id = ++fb->next_sub;
        snprintf(s->room, sizeof(s->room), "%s", room);
        s->cb = cb;
        s->cb_data = cb_data;
        fb->n_subs++;
        break;
    }
    if (id < 0)
        goto out_unlock;
    for (int i = 0; i < fb->burst_on_subscribe; i++) {
        json_t *data = json_pack("{s:i}", "seq", i);

        emit_locked(fb, room, "talking", data, &n);
        json_decref(data);
    }
    if (fb->destroy_on_subscribe) {
        json_t *data = json_pack("{s:s}", "room", room);

        emit_locked(fb, room, "destroyed", data, &n);
        json_decref(data);
    }

out_unlock:
    pthread_mutex_unlock(&fb->lock);
    return id;
}

static void fake_unsubscribe(void *ctx, int64_t id)
{
    struct fake_backend *fb = ctx;

    /* Taking the lock is what makes "no callback runs after unsubscribe
     * returns" true: callbacks only run with it held. */
    pthread_mutex_lock(&fb->lock);
    fb->n_unsubscribed++;
    for (int i = 0; i < FAKE_MAX_SUBS; i++) {
        if (fb->subs[i].id == id) {
            fb->subs[i].id = 0;
            fb->n_subs--;
        }
    }
    pthread_mutex_unlock(&fb->lock);
}

static int fake_metrics(void *ctx, char **out, size_t *len)
{
    struct fake_backend *fb = ctx;
    char buf[256];
    int n;

    pthread_mutex_lock(&fb->lock);
    n = snprintf(buf, sizeof(buf), "# HELP chorus_rooms Rooms.\n# TYPE chorus_rooms gauge\n"
                                   "chorus_rooms %zu\n", json_object_size(fb->rooms));
    pthread_mutex_unlock(&fb->lock);
    *out = strdup(buf);
    if (!*out)
        return -ENOMEM;
    *len = (size_t)n;
    return 0;
}

void fake_backend_init(struct fake_backend *fb)
{
    memset(fb, 0, sizeof(*fb));
    pthread_mutex_init(&fb->lock, NULL);
    fb->rooms = json_object();
    fb->parts = json_object();
    fb->next_id = 1;
}

void fake_backend_fini(struct fake_backend *fb)
{
    json_decref(fb->rooms);
    json_decref(fb->parts);
    json_decref(fb->last_body);
    pthread_mutex_destroy(&fb->lock);
}

struct api_backend fake_backend_api(struct fake_backend *fb)
{
    struct api_backend be = {
        .ctx = fb,
        .call = fake_call,
        .subscribe = fake_subscribe,
        .unsubscribe = fake_unsubscribe,
        .metrics = fake_metrics,
    };
    return be;
}

void fake_backend_seed(struct fake_backend *fb, const char *name)
{
    struct api_result res;
    struct api_call call = { .op = API_OP_ROOM_CREATE };
    json_t *body = json_pack("{s:s, s:i, s:i, s:i, s:i, s:b, s:b}", "name", name,
                             "sample_rate", 48000, "frame_ms", 20, "max_participants", 100,
                             "talkers", 3, "silence_suppression", 0, "comfort_noise", 0);
    json_t *pbody = json_pack("{s:s, s:i}", "codec", "opus", "payload_type", 111);

    memset(&res, 0, sizeof(res));
    call.body = body;
    fake_call(fb, &call, &res);
    json_decref(res.body);
    memset(&res, 0, sizeof(res));
    call.op = API_OP_PARTICIPANT_CREATE;
    call.room = name;
    call.body = pbody;
    fake_call(fb, &call, &res);
    json_decref(res.body);
    json_decref(body);
    json_decref(pbody);
}

int fake_backend_emit(struct fake_backend *fb, const char *room, const char *type, json_t *data)
{
    int n = 0;

    pthread_mutex_lock(&fb->lock);
    emit_locked(fb, room, type, data, &n);
    pthread_mutex_unlock(&fb->lock);
    return n;
}

bool fake_backend_wait_subs(struct fake_backend *fb, int n, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 5) {
        int cur;

        pthread_mutex_lock(&fb->lock);
        cur = fb->n_subs;
        pthread_mutex_unlock(&fb->lock);
        if (cur == n)
            return true;
        usleep(5000);
    }
    return false;
}

enum api_op fake_backend_last_op(struct fake_backend *fb)
{
    enum api_op op;

    pthread_mutex_lock(&fb->lock);
    op = fb->last_op;
    pthread_mutex_unlock(&fb->lock);
    return op;
}

json_t *fake_backend_last_body(struct fake_backend *fb)
{
    json_t *b;

    pthread_mutex_lock(&fb->lock);
    b = fb->last_body ? json_deep_copy(fb->last_body) : NULL;
    pthread_mutex_unlock(&fb->lock);
    return b;
}

int fake_backend_unsubscribed(struct fake_backend *fb)
{
    int n;

    pthread_mutex_lock(&fb->lock);
    n = fb->n_unsubscribed;
    pthread_mutex_unlock(&fb->lock);
    return n;
}
