/*
 * brg_legs.c: what every leg has in common, whatever its transport: the
 * mixer leg, the received RTP path into the mixer (parse, receiver
 * statistics, push), the mixed RTP path out of it (pop, RTP header of the
 * leg's own outgoing stream, hand to the transport), the participant JSON,
 * and the participant routes of the REST API.
 *
 * A leg is freed only when the mixer has released it (LEG_RELEASED) and its
 * transport has closed its handles: l->pending counts those.
 *
 * Thread: loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brg.h"
#include "brg_log.h"
#include "mix_jitter.h"

struct brg_leg *brg_leg_find(struct brg *b, uint32_t id)
{
    struct brg_leg *l = NULL;

    HASH_FIND(hh, b->legs, &id, sizeof(id), l);
    return l;
}

int brg_leg_new(struct brg *b, struct brg_room_rt *r, enum brg_leg_kind kind,
                enum brg_transport tr, enum mix_codec codec, uint32_t rate,
                struct brg_leg **out)
{
    struct mix_leg_config mc;
    struct brg_leg *l;
    int rc;

    *out = NULL;
    if (r->dying || !r->mix)
        return -ENOENT;
    if (b->nlegs >= (uint32_t)b->cfg->max_legs)
        return -EMFILE;
    if (r->rec.max_participants && r->nlegs >= r->rec.max_participants)
        return -ENOSPC;
    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    do {
        l->id = ++b->next_leg_id;
    } while (l->id == 0 || brg_leg_find(b, l->id));
    l->b = b;
    l->kind = kind;
    l->transport = tr;
    l->codec = codec;
    l->rate = codec == MIX_CODEC_OPUS ? rate : 8000;
    l->clock = codec == MIX_CODEC_OPUS ? 48000 : 8000;
    l->room = r;
    l->created_ms = l->last_rx_ms = brg_now_ms();
    /* RFC 3550 §5.1: random SSRC, initial sequence number and timestamp. */
    l->out.ssrc = randombytes_random();
    l->out.seq = (uint16_t)randombytes_random();
    l->out.ts_offset = randombytes_random();
    l->out.pt = codec == MIX_CODEC_OPUS ? 111 : (codec == MIX_CODEC_PCMU ? 0 : 8);

    mix_leg_config_default(&mc);
    mc.id = l->id;
    mc.user = l;
    mc.codec = codec;
    mc.rate = l->rate;
    rc = mix_leg_new(r->mix, &mc, &l->mix);
    if (rc) {
        free(l);
        return rc;
    }
    HASH_ADD(hh, b->legs, id, sizeof(l->id), l);
    l->room_next = r->legs;
    r->legs = l;
    r->nlegs++;
    b->nlegs++;
    b->c.legs_joined++;
    *out = l;
    return 0;
}

/* Announces a leg once its transport details are known. */
void brg_leg_joined(struct brg *b, struct brg_leg *l)
{
    BRG_LOGI("bridge.legs", "participant %u joined room %s (%s, %s)", l->id,
             l->room->rec.name, l->kind == BRG_LEG_SECURE ? "secure" : "rtp",
             l->transport == BRG_TCP ? "tcp" : "udp");
    brg_room_emit(l->room, "joined", brg_leg_json(l));
}

static void leg_maybe_free(struct brg_leg *l)
{
    if (l->pending > 0)
        return;
    free(l);
}

void brg_leg_unref(struct brg_leg *l)
{
    l->pending--;
    leg_maybe_free(l);
}

void brg_leg_remove(struct brg *b, struct brg_leg *l, const char *reason)
{
    struct brg_room_rt *r = l->room;

    if (l->dying)
        return;
    l->dying = true;
    l->leave_reason = reason;
    for (struct brg_leg **pp = &r->legs; *pp; pp = &(*pp)->room_next) {
        if (*pp == l) {
            *pp = l->room_next;
            break;
        }
    }
    r->nlegs--;
    b->nlegs--;
    HASH_DEL(b->legs, l);
    b->c.legs_left++;

    json_t *ev = json_pack("{s:I, s:s}", "id", (json_int_t)l->id, "reason", reason);
    brg_room_emit(r, "left", ev);
    BRG_LOGI("bridge.legs", "participant %u left room %s: %s", l->id, r->rec.name, reason);

    /* The mixer's release and the transport's handle closes each hold the
     * leg; the last one frees it. */
    l->pending = 1;
    if (l->kind == BRG_LEG_RTP)
        brg_plain_close(l);
    else
        brg_secure_close(b, l, reason);
    if (l->mix && mix_leg_destroy(l->mix) == 0) {
        l->mix = NULL;
        l->pending++;
    }
    brg_leg_unref(l);
}

void brg_leg_released(struct brg *b, struct brg_leg *l)
{
    (void)b;
    brg_leg_unref(l);
}

/* Parses one received RTP packet and hands its payload to the mixer.
 * Returns 0, or a negative errno when the packet was dropped (counted). */
int brg_leg_rx_rtp(struct brg *b, struct brg_leg *l, const uint8_t *buf, size_t len)
{
    struct brg_rtp_packet p;
    struct mix_in_meta m;
    enum brg_rtp_result pr;
    uint64_t now_ns;

    if (l->dying || !l->mix)
        return -ENOENT;
    pr = brg_rtp_parse(&p, buf, len, BRG_RTP_EXT_ID_AUDIO_LEVEL);
    if (pr != BRG_RTP_OK || p.payload_len == 0 || p.payload_len > MIX_JB_MAX_PAYLOAD ||
        (l->kind == BRG_LEG_RTP && p.pt != l->pt_in)) {
        l->rx_invalid++;
        b->c.rx_invalid++;
        BRG_LOG_RATELIMITED("bridge.rtp", BRG_LOG_DEBUG,
                            "participant %u: dropped packet (%s, pt %u)", l->id,
                            pr == BRG_RTP_OK ? "payload" : brg_rtp_result_str(pr), p.pt);
        return -EINVAL;
    }
    if (!l->rx_started || p.ssrc != l->rx_ssrc) {
        /* First packet, or the sender restarted with a new SSRC. */
        brg_rtp_stats_init(&l->rx, p.ssrc);
        l->rx_ssrc = p.ssrc;
        l->rx_started = true;
    }
    now_ns = mix_engine_now_ns(b->engine);
    brg_rtp_stats_update(&l->rx, p.seq, p.ts, brg_rtp_arrival(now_ns / 1000, l->clock));
    l->last_rx_ms = now_ns / 1000000;

    m.seq = p.seq;
    m.ts = p.ts;
    m.arrival_ns = now_ns;
    m.level = p.level_present ? p.level : 0xff;
    m.vad = p.vad;
    switch (mix_leg_push(l->mix, &m, p.payload, (uint32_t)p.payload_len)) {
    case 0:
        break;
    case -EMSGSIZE:
        /* A well-formed header around a payload no codec frame can have
         * (the mixer counted it against the leg already). */
        b->c.rx_invalid++;
        return -EINVAL;
    default:
        return -ENOSPC; /* the mixer is behind: counted as in_dropped */
    }
    b->c.rx_packets++;
    b->c.rx_bytes += len;
    return 0;
}

/* Sends everything the mixer has for this leg. */
void brg_leg_drain(struct brg *b, struct brg_leg *l)
{
    uint8_t payload[MIX_MAX_PACKET];
    uint8_t pkt[BRG_MAX_DATAGRAM];
    struct mix_out_meta m;
    int n;

    if (l->dying || !l->mix)
        return;
    while ((n = mix_leg_pop(l->mix, &m, payload, sizeof(payload))) >= 0) {
        if (m.flags & MIX_OUT_LOST) {
            /* A forwarded talker's lost frame: a gap in our sequence numbers
             * lets the receiver conceal it (and use the next packet's FEC). */
            l->out.seq++;
            continue;
        }
        struct brg_rtp_header h = {
            .pt = l->out.pt,
            .marker = (m.flags & MIX_OUT_MARKER) != 0,
            .seq = l->out.seq++,
            .ts = m.ts + l->out.ts_offset,
            .ssrc = l->out.ssrc,
            /* Our own client gets the mix level (RFC 6465 spirit); standard
             * RTP peers get a plain header. */
            .level_present = l->kind == BRG_LEG_SECURE,
            .level = m.level,
        };
        int len = brg_rtp_build(pkt, sizeof(pkt), &h, payload, (size_t)n);
        int rc;

        if (len < 0)
            continue;
        rc = l->kind == BRG_LEG_RTP ? brg_plain_send(b, l, pkt, (size_t)len)
                                    : brg_secure_send(b, l, pkt, (size_t)len);
        if (rc == 0) {
            l->out.last_ts = h.ts;
            l->out.last_ms = brg_now_ms();
            l->out.packets++;
            l->out.octets += (uint64_t)n;
            b->c.tx_packets++;
            b->c.tx_bytes += (uint64_t)len;
        } else {
            b->c.tx_errors++;
        }
    }
}

static const char *codec_name(enum mix_codec c)
{
    return c == MIX_CODEC_OPUS ? "opus" : (c == MIX_CODEC_PCMU ? "pcmu" : "pcma");
}

static json_t *addr_json(const struct sockaddr_storage *ss, bool known)
{
    char host[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 16];

    if (!known)
        return json_null();
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(buf, sizeof(buf), "%s:%u", host, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(buf, sizeof(buf), "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        return json_null();
    }
    return json_string(buf);
}

json_t *brg_leg_json(const struct brg_leg *l)
{
    struct mix_leg_stats s;
    struct brg_rtp_stats rx = l->rx;
    json_t *o, *ex = json_array();
    double jitter_ms = 0;

    memset(&s, 0, sizeof(s));
    if (l->mix)
        mix_leg_stats(l->mix, &s);
    if (l->rx_started)
        jitter_ms = (double)(rx.jitter_q4 >> 4) * 1000.0 / l->clock;
    for (uint32_t i = 0; i < l->nexclude; i++)
        json_array_append_new(ex, json_integer(l->exclude[i]));
    o = json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:s,"
                  " s:b, s:b, s:b, s:b, s:b, s:f, s:o,"
                  " s:f, s:I, s:I,"
                  " s:{s:I, s:I, s:I, s:I, s:I},"
                  " s:I, s:I, s:I, s:I, s:I}",
                  "id", (json_int_t)l->id,
                  "kind", l->kind == BRG_LEG_SECURE ? "secure" : "rtp",
                  "transport", l->transport == BRG_TCP ? "tcp" : "udp",
                  "path", "direct",
                  "remote", addr_json(&l->remote, l->remote_known),
                  "codec", codec_name(l->codec),
                  "sample_rate", (json_int_t)l->rate,
                  "payload_type", (json_int_t)l->out.pt,
                  "display_name", l->display_name,
                  "talking", s.talking, "mixed", s.mixed,
                  "muted", l->muted, "deaf", l->deaf, "suspended", l->suspended,
                  "gain_db", l->gain_db, "exclude", ex,
                  "jitter_ms", jitter_ms,
                  "jitter_buffer_ms", (json_int_t)s.jb_depth_ms,
                  "jitter_buffer_target_ms", (json_int_t)s.jb_target_ms,
                  "loss",
                  "lost", (json_int_t)s.lost, "late", (json_int_t)s.late,
                  "concealed", (json_int_t)s.concealed,
                  "fec_recovered", (json_int_t)s.fec_recovered,
                  "duplicate", (json_int_t)s.duplicate,
                  "packets_in", (json_int_t)s.packets_in,
                  "packets_out", (json_int_t)s.packets_out,
                  "bytes_in", (json_int_t)s.bytes_in,
                  "bytes_out", (json_int_t)s.bytes_out,
                  "invalid", (json_int_t)(s.invalid + l->rx_invalid));
    if (o && l->kind == BRG_LEG_RTP) {
        json_object_set_new(o, "local_port", json_integer(l->local_port));
        json_object_set_new(o, "rtcp_mux", json_boolean(l->rtcp_mux));
    }
    return o;
}

/* ---- REST ---- */

static void api_patch(struct brg *b, struct brg_leg *l, const json_t *body,
                      struct api_result *res)
{
    json_t *v;
    bool was_muted = l->muted;
    int rc = 0;

    v = json_object_get(body, "exclude");
    if (v) {
        size_t i;
        json_t *e;
        uint32_t ids[MIX_MAX_EXCLUDE];
        uint32_t n = 0;

        json_array_foreach(v, i, e) {
            uint32_t id = (uint32_t)json_integer_value(e);
            struct brg_leg *o = brg_leg_find(b, id);

            /* The API schema bounds the array with a constant of its own
             * (API_EXCLUDE_MAX); ids[] must not rely on the two agreeing. */
            if (n == MIX_MAX_EXCLUDE) {
                brg_api_error(res, 422, "exclude", "at most %d participants can be excluded",
                              MIX_MAX_EXCLUDE);
                return;
            }
            if (!o || o->room != l->room || o == l) {
                brg_api_error(res, 422, "exclude",
                              "participant %u is not another participant of this room", id);
                return;
            }
            ids[n++] = id;
        }
        /* Turn off the exclusions that are gone, then on the new ones. */
        for (uint32_t k = 0; k < l->nexclude; k++) {
            bool keep = false;
            for (uint32_t j = 0; j < n; j++)
                keep |= ids[j] == l->exclude[k];
            struct brg_leg *o = brg_leg_find(b, l->exclude[k]);
            if (!keep && o && o->mix)
                rc |= mix_leg_exclude(l->mix, o->mix, false);
        }
        for (uint32_t j = 0; j < n; j++)
            rc |= mix_leg_exclude(l->mix, brg_leg_find(b, ids[j])->mix, true);
        memcpy(l->exclude, ids, n * sizeof(ids[0]));
        l->nexclude = n;
    }
    if ((v = json_object_get(body, "muted"))) {
        l->muted = json_is_true(v);
        rc |= mix_leg_set_muted(l->mix, l->muted);
    }
    if ((v = json_object_get(body, "deaf"))) {
        l->deaf = json_is_true(v);
        rc |= mix_leg_set_deaf(l->mix, l->deaf);
    }
    if ((v = json_object_get(body, "suspended"))) {
        l->suspended = json_is_true(v);
        rc |= mix_leg_set_suspended(l->mix, l->suspended);
    }
    if ((v = json_object_get(body, "gain_db"))) {
        l->gain_db = json_number_value(v);
        rc |= mix_leg_set_gain(l->mix, (float)l->gain_db);
    }
    if (rc) {
        brg_api_error(res, 503, NULL, "the mixer did not take the change");
        return;
    }
    brg_room_emit(l->room, was_muted != l->muted ? "muted" : "updated", brg_leg_json(l));
    res->status = 200;
    res->body = brg_leg_json(l);
}

void brg_legs_api(struct brg *b, const struct api_call *c, struct api_result *res)
{
    struct brg_room_rt *r = c->room ? brg_room_find(b, c->room) : NULL;
    struct brg_leg *l;

    if (!r) {
        brg_api_error(res, 404, NULL, "no room named %s", c->room ? c->room : "");
        return;
    }
    if (c->op == API_OP_PARTICIPANTS_LIST) {
        json_t *list = json_array();
        for (l = r->legs; l; l = l->room_next)
            json_array_append_new(list, brg_leg_json(l));
        res->status = 200;
        res->body = json_pack("{s:o}", "participants", list);
        return;
    }
    if (c->op == API_OP_PARTICIPANT_CREATE) {
        if (brg_plain_create(b, r, c->body, &l, res) == 0) {
            res->status = 201;
            res->body = brg_leg_json(l);
        }
        return;
    }
    l = brg_leg_find(b, c->participant);
    if (!l || l->room != r || l->dying) {
        brg_api_error(res, 404, NULL, "no participant %u in room %s", c->participant, r->rec.name);
        return;
    }
    switch (c->op) {
    case API_OP_PARTICIPANT_GET:
        res->status = 200;
        res->body = brg_leg_json(l);
        break;
    case API_OP_PARTICIPANT_UPDATE:
        api_patch(b, l, c->body, res);
        break;
    case API_OP_PARTICIPANT_DELETE:
        brg_leg_remove(b, l, "kicked");
        res->status = 204;
        break;
    default:
        brg_api_error(res, 405, NULL, "operation not allowed on a participant");
        break;
    }
}
