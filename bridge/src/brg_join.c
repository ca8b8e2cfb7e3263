/*
 * brg_join.c: see brg_join.h. JSON through jansson, with every field
 * checked for type and length; anything else in the object is refused so
 * that a future version is an explicit change.
 */
#include "brg_join.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int copy_str(char *dst, size_t cap, json_t *v, bool required)
{
    const char *s;
    size_t n;

    if (!v)
        return required ? -EINVAL : 0;
    if (!json_is_string(v))
        return -EINVAL;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n >= cap || memchr(s, '\0', n))
        return -EINVAL;
    memcpy(dst, s, n + 1);
    return 0;
}

static json_t *parse_object(const uint8_t *buf, size_t len)
{
    json_t *o;

    if (len == 0 || len > BRG_JOIN_REQ_PAD * 4)
        return NULL;
    o = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static bool only_keys(json_t *o, const char *const *keys)
{
    const char *k;
    json_t *v;

    json_object_foreach(o, k, v) {
        bool known = false;
        for (const char *const *p = keys; *p; p++)
            known |= strcmp(k, *p) == 0;
        if (!known)
            return false;
    }
    return true;
}

int brg_join_req_encode(const struct brg_join_req *req, uint8_t *out, size_t cap)
{
    char pad[BRG_JOIN_REQ_PAD];
    json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:I}", "v", BRG_JOIN_VERSION,
                          "room", req->room, "pin", req->pin, "name", req->name,
                          "rate", (json_int_t)req->rate);
    size_t n;

    if (!o)
        return -EINVAL;
    n = json_dumpb(o, NULL, 0, JSON_COMPACT);
    /* Pad with a string field so the whole object is exactly PAD bytes. */
    if (n + 10 > BRG_JOIN_REQ_PAD || cap < BRG_JOIN_REQ_PAD) {
        json_decref(o);
        return -EMSGSIZE;
    }
    memset(pad, 'x', BRG_JOIN_REQ_PAD - n - 10);
    pad[BRG_JOIN_REQ_PAD - n - 10] = '\0';
    json_object_set_new(o, "pad", json_string(pad));
    n = json_dumpb(o, (char *)out, cap, JSON_COMPACT);
    json_decref(o);
    return n > cap ? -EMSGSIZE : (int)n;
}

int brg_join_req_decode(struct brg_join_req *req, const uint8_t *buf, size_t len)
{
    static const char *const keys[] = {"v", "room", "pin", "name", "rate", "pad", NULL};
    json_t *o = parse_object(buf, len), *v;
    int rc = -EINVAL;

    memset(req, 0, sizeof(*req));
    if (!o)
        return -EINVAL;
    if (!only_keys(o, keys))
        goto out;
    v = json_object_get(o, "v");
    if (!json_is_integer(v) || json_integer_value(v) != BRG_JOIN_VERSION)
        goto out;
    if (copy_str(req->room, sizeof(req->room), json_object_get(o, "room"), true) ||
        copy_str(req->pin, sizeof(req->pin), json_object_get(o, "pin"), false) ||
        copy_str(req->name, sizeof(req->name), json_object_get(o, "name"), false))
        goto out;
    v = json_object_get(o, "rate");
    req->rate = 48000;
    if (v) {
        json_int_t r = json_is_integer(v) ? json_integer_value(v) : 0;
        if (r != 8000 && r != 12000 && r != 16000 && r != 24000 && r != 48000)
            goto out;
        req->rate = (uint32_t)r;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int brg_join_resp_encode(const struct brg_join_resp *resp, uint8_t *out, size_t cap)
{
    json_t *o = resp->ok
                    ? json_pack("{s:b, s:I, s:I, s:I}", "ok", 1, "id", (json_int_t)resp->id,
                                "sample_rate", (json_int_t)resp->sample_rate,
                                "frame_ms", (json_int_t)resp->frame_ms)
                    : json_pack("{s:b, s:s}", "ok", 0, "error", resp->error);
    size_t n;

    if (!o)
        return -EINVAL;
    n = json_dumpb(o, (char *)out, cap, JSON_COMPACT);
    json_decref(o);
    return n == 0 || n > cap ? -EMSGSIZE : (int)n;
}

int brg_join_resp_decode(struct brg_join_resp *resp, const uint8_t *buf, size_t len)
{
    static const char *const keys[] = {"ok", "id", "sample_rate", "frame_ms", "error", NULL};
    json_t *o = parse_object(buf, len), *v;
    int rc = -EINVAL;

    memset(resp, 0, sizeof(*resp));
    if (!o)
        return -EINVAL;
    if (!only_keys(o, keys) || !json_is_boolean(json_object_get(o, "ok")))
        goto out;
    resp->ok = json_is_true(json_object_get(o, "ok"));
    if (resp->ok) {
        v = json_object_get(o, "id");
        if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
            json_integer_value(v) > UINT32_MAX)
            goto out;
        resp->id = (uint32_t)json_integer_value(v);
        resp->sample_rate = (uint32_t)json_integer_value(json_object_get(o, "sample_rate"));
        resp->frame_ms = (uint32_t)json_integer_value(json_object_get(o, "frame_ms"));
    } else if (copy_str(resp->error, sizeof(resp->error), json_object_get(o, "error"), true)) {
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}
