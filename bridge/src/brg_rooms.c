/*
 * brg_rooms.c: rooms. A room is a persisted record (SQLite, brg_store) plus
 * a mixer room plus the SSE subscribers that watch it. The store is written
 * before the API answers, so a room whose creation was answered 2xx survives
 * kill -9; participants are live state and are not persisted.
 *
 * Thread: loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brg.h"
#include "brg_log.h"
#include "brg_overlay.h"

static uint32_t next_mix_room_id = 1;

static void settings_from_rec(const struct brg_room *rec, struct mix_room_settings *s)
{
    mix_room_settings_default(s);
    s->rate = rec->sample_rate;
    s->frame_ms = rec->frame_ms;
    s->talkers = rec->talkers;
    s->silence_suppression = rec->silence_suppression;
    s->comfort_noise = rec->comfort_noise;
}

struct brg_room_rt *brg_room_find(struct brg *b, const char *name)
{
    struct brg_room_rt *r = NULL;

    HASH_FIND_STR(b->rooms, name, r);
    return r;
}

int brg_room_create(struct brg *b, const struct brg_room *rec, bool persist,
                    struct brg_room_rt **out)
{
    struct mix_room_settings s;
    struct brg_room_rt *r;
    int rc;

    if (brg_room_find(b, rec->name))
        return -EEXIST;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->rec = *rec;
    r->b = b;
    if (r->rec.created_at == 0)
        r->rec.created_at = (int64_t)time(NULL);
    if (persist) {
        rc = brg_store_room_insert(b->store, &r->rec);
        if (rc)
            goto err;
    }
    settings_from_rec(&r->rec, &s);
    rc = mix_room_new(b->engine, next_mix_room_id++, r, &s, &r->mix);
    if (rc) {
        if (persist)
            brg_store_room_delete(b->store, r->rec.name);
        goto err;
    }
    r->mix_live = 1;
    HASH_ADD_STR(b->rooms, rec.name, r);
    b->c.rooms_created++;
    /* Rooms loaded at start-up come before the node: it publishes them
     * all when it starts. */
    brg_overlay_room_added(b, r->rec.name);
    if (out)
        *out = r;
    return 0;
err:
    free(r);
    return rc;
}

static int load_one(const struct brg_room *rec, void *data)
{
    struct brg *b = data;
    int rc = brg_room_create(b, rec, false, NULL);

    if (rc)
        BRG_LOGW("bridge.rooms", "room %s not restored: %s", rec->name, strerror(-rc));
    return 0;
}

int brg_rooms_load(struct brg *b)
{
    return brg_store_room_list(b->store, load_one, b);
}

static void rfc3339(char *buf, size_t cap, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *brg_room_json(const struct brg_room_rt *r)
{
    char created[32];

    rfc3339(created, sizeof(created), r->rec.created_at);
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:b, s:b, s:I, s:s}",
                     "name", r->rec.name,
                     "sample_rate", (json_int_t)r->rec.sample_rate,
                     "frame_ms", (json_int_t)r->rec.frame_ms,
                     "max_participants", (json_int_t)r->rec.max_participants,
                     "talkers", (json_int_t)r->rec.talkers,
                     "silence_suppression", r->rec.silence_suppression,
                     "comfort_noise", r->rec.comfort_noise,
                     "pin_required", r->rec.pin_hash[0] != '\0',
                     "participants", (json_int_t)r->nlegs,
                     "created_at", created);
}

void brg_room_emit(struct brg_room_rt *r, const char *type, json_t *data)
{
    if (!data)
        return;
    json_object_set_new(data, "room", json_string(r->rec.name));
    for (struct brg_sub *s = r->subs; s; s = s->next)
        s->cb(type, data, s->cb_data);
    json_decref(data);
}

int64_t brg_room_subscribe(struct brg *b, const char *room, api_event_cb cb,
                           void *cb_data)
{
    struct brg_room_rt *r = room ? brg_room_find(b, room) : NULL;
    struct brg_sub *s;
    unsigned n = 0;

    if (!r || r->dying)
        return -ENOENT;
    for (s = r->subs; s; s = s->next)
        n++;
    if (n >= BRG_MAX_SUBSCRIBERS)
        return -EMFILE;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->id = ++b->next_sub_id;
    s->cb = cb;
    s->cb_data = cb_data;
    s->room = r;
    s->next = r->subs;
    r->subs = s;
    return s->id;
}

void brg_room_unsubscribe(struct brg *b, int64_t id)
{
    struct brg_room_rt *r, *tmp;

    HASH_ITER(hh, b->rooms, r, tmp) {
        for (struct brg_sub **pp = &r->subs; *pp; pp = &(*pp)->next) {
            if ((*pp)->id == id) {
                struct brg_sub *s = *pp;
                *pp = s->next;
                free(s);
                return;
            }
        }
    }
}

static void subs_free(struct brg_room_rt *r)
{
    while (r->subs) {
        struct brg_sub *s = r->subs;
        r->subs = s->next;
        free(s);
    }
}

/* Removes the room from the bridge: its legs are told and dropped, the
 * mixer room is destroyed (freed when ROOM_RELEASED comes back), and
 * subscribers get "destroyed" and are detached. The store is the caller's
 * business. */
void brg_room_destroy(struct brg *b, struct brg_room_rt *r)
{
    if (r->dying)
        return;
    while (r->legs)
        brg_leg_remove(b, r->legs, "room deleted");
    brg_room_emit(r, "destroyed", json_object());
    subs_free(r);
    brg_overlay_room_removed(b, r->rec.name);
    HASH_DEL(b->rooms, r);
    r->dying = true;
    if (r->mix && mix_room_destroy(r->mix) == 0)
        r->mix = NULL;
    b->c.rooms_deleted++;
    if (!r->mix)
        return;
    /* The command ring was full: nothing will come back for it. The
     * engine frees the room at shutdown; forget it here. */
    BRG_LOGE("bridge.rooms", "room %s: mixer did not take the removal", r->rec.name);
    free(r);
}

void brg_room_released(struct brg *b, struct brg_room_rt *r)
{
    (void)b;
    /* A room whose mixer room was replaced (new rate or frame) gets the old
     * one's release too: only a deleted room is freed, and only with its
     * last release. A reshape followed at once by a delete has two releases
     * in flight; freeing on the first made the second a use after free. */
    if (!r)
        return;
    if (r->mix_live > 0)
        r->mix_live--;
    if (r->dying && !r->mix && r->mix_live == 0)
        free(r);
}

/* ---- REST ---- */

/* Copies the settable fields of @body into @rec. The API module validated
 * types and ranges; pin arrives already hashed by the backend ("pin_hash"). */
static void rec_apply(struct brg_room *rec, const json_t *body)
{
    json_t *v;

    if ((v = json_object_get(body, "sample_rate")))
        rec->sample_rate = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(body, "frame_ms")))
        rec->frame_ms = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(body, "max_participants")))
        rec->max_participants = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(body, "talkers")))
        rec->talkers = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(body, "silence_suppression")))
        rec->silence_suppression = json_is_true(v);
    if ((v = json_object_get(body, "comfort_noise")))
        rec->comfort_noise = json_is_true(v);
    if ((v = json_object_get(body, "pin_hash")) && json_is_string(v))
        snprintf(rec->pin_hash, sizeof(rec->pin_hash), "%s", json_string_value(v));
}

static void api_create(struct brg *b, const json_t *body, struct api_result *res)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    struct brg_room rec;
    struct brg_room_rt *r;
    int rc;

    if (!name || !brg_room_name_valid(name)) {
        brg_api_error(res, 422, "name", "a room name is 1 to 64 characters of A-Z a-z 0-9 . _ ~ -");
        return;
    }
    if (brg_room_find(b, name)) {
        brg_api_error(res, 409, "name", "room %s already exists", name);
        return;
    }
    brg_room_defaults(&rec);
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    rec_apply(&rec, body);
    rc = brg_room_create(b, &rec, true, &r);
    if (rc == -EEXIST) {
        brg_api_error(res, 409, "name", "room %s already exists", name);
        return;
    }
    if (rc) {
        brg_api_error(res, 503, NULL, "room %s could not be created: %s", name, strerror(-rc));
        return;
    }
    BRG_LOGI("bridge.rooms", "room %s created (%u Hz, %u ms, K=%u)", name,
             rec.sample_rate, rec.frame_ms, rec.talkers);
    res->status = 201;
    res->body = brg_room_json(r);
}

static void api_update(struct brg *b, struct brg_room_rt *r, const json_t *body,
                       struct api_result *res)
{
    struct brg_room rec = r->rec;
    struct mix_room_settings s;
    bool reshape;
    int rc;

    rec_apply(&rec, body);
    reshape = rec.sample_rate != r->rec.sample_rate || rec.frame_ms != r->rec.frame_ms;
    if (reshape && r->nlegs > 0) {
        brg_api_error(res, 409, rec.sample_rate != r->rec.sample_rate ? "sample_rate" : "frame_ms",
                      "sample rate and frame size can change only while the room is empty");
        return;
    }
    if (rec.max_participants && rec.max_participants < r->nlegs) {
        brg_api_error(res, 409, "max_participants", "the room has %u participants", r->nlegs);
        return;
    }
    rc = brg_store_room_put(b->store, &rec, NULL);
    if (rc) {
        brg_api_error(res, 503, NULL, "the room could not be saved: %s", strerror(-rc));
        return;
    }
    settings_from_rec(&rec, &s);
    if (reshape) {
        struct mix_room *nm;
        rc = mix_room_new(b->engine, next_mix_room_id++, r, &s, &nm);
        if (rc == 0) {
            mix_room_destroy(r->mix);
            r->mix = nm;
            r->mix_live++;
        }
    } else {
        rc = mix_room_update(r->mix, &s);
    }
    if (rc) {
        brg_store_room_put(b->store, &r->rec, NULL);
        brg_api_error(res, 503, NULL, "the mixer refused the settings: %s", strerror(-rc));
        return;
    }
    r->rec = rec;
    brg_room_emit(r, "updated", brg_room_json(r));
    res->status = 200;
    res->body = brg_room_json(r);
}

void brg_rooms_api(struct brg *b, const struct api_call *c, struct api_result *res)
{
    struct brg_room_rt *r = NULL, *tmp;
    json_t *list;
    int rc;

    if (c->op == API_OP_ROOMS_LIST) {
        list = json_array();
        HASH_ITER(hh, b->rooms, r, tmp)
            json_array_append_new(list, brg_room_json(r));
        res->status = 200;
        res->body = json_pack("{s:o}", "rooms", list);
        return;
    }
    if (c->op == API_OP_ROOM_CREATE) {
        api_create(b, c->body, res);
        return;
    }
    r = c->room ? brg_room_find(b, c->room) : NULL;
    if (!r) {
        brg_api_error(res, 404, NULL, "no room named %s", c->room ? c->room : "");
        return;
    }
    switch (c->op) {
    case API_OP_ROOM_GET:
        res->status = 200;
        res->body = brg_room_json(r);
        break;
    case API_OP_ROOM_UPDATE:
        api_update(b, r, c->body, res);
        break;
    case API_OP_ROOM_DELETE:
        rc = brg_store_room_delete(b->store, r->rec.name);
        if (rc && rc != -ENOENT) {
            brg_api_error(res, 503, NULL, "the room could not be deleted: %s", strerror(-rc));
            return;
        }
        BRG_LOGI("bridge.rooms", "room %s deleted", r->rec.name);
        brg_room_destroy(b, r);
        res->status = 204;
        break;
    default:
        brg_api_error(res, 405, NULL, "operation not allowed on a room");
        break;
    }
}
