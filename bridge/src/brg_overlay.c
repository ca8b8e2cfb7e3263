/*
 * brg_overlay.c: the bridge's overlay node (brg_overlay.h): configuration
 * from brg_config, the node's events in the bridge's log (topic "ovl"),
 * room records for the bridge's rooms, GET /v1/overlay and the status the
 * metrics show.
 *
 * Thread: loop.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brg.h"
#include "brg_log.h"
#include "brg_overlay.h"
#include "ovl_record.h"

#define NS_PER_S 1000000000ull

struct brg_ovl {
    struct brg *b;
    struct ovl_uvnode *u;        /* NULL once closed */
    bool closing;                /* brg_overlay_stop ran */
    bool seed;                   /* auto without bootstrap: a supernode */
    bool has_authority;
    uint8_t authority[OVL_ED_PK_LEN];
    uint8_t pk[OVL_ED_PK_LEN];   /* our identity */
    struct ovl_addr media;       /* advertised IP, media UDP port */
    bool media_known;
    bool nat_hint_logged;        /* the "behind a NAT" advice, once */
};

static struct brg_ovl *ovl(struct brg *b)
{
    return b->overlay;
}

static bool running(const struct brg_ovl *o)
{
    return o && o->u && !o->closing;
}

static const char *mode_name(int role)
{
    switch (role) {
    case BRG_ROLE_SUPERNODE: return "supernode";
    case BRG_ROLE_PEER: return "peer";
    default: return "auto";
    }
}

/* ---- events ---- */

static void log_logged_in(struct brg_ovl *o, const struct ovl_event *ev)
{
    char c[OVL_UV_CONTACT_TEXT_MAX];

    ovl_uv_contact_format(c, sizeof(c), &ev->supernode);
    if (memcmp(ev->supernode.identity, o->pk, OVL_ED_PK_LEN) == 0)
        BRG_LOGI("ovl", "logged in as a supernode (%s); others bootstrap with --bootstrap %s",
                 o->seed ? "the seed of this overlay" : "joined the DHT", c);
    else
        BRG_LOGI("ovl", "logged in through supernode %s", c);
}

static void on_event(struct ovl_uvnode *u, const struct ovl_event *ev, void *data)
{
    struct brg_ovl *o = data;
    char c[OVL_UV_CONTACT_TEXT_MAX];

    (void)u;
    switch (ev->kind) {
    case OVL_NEV_LOGGED_IN:
        log_logged_in(o, ev);
        break;
    case OVL_NEV_LOGIN_FAILED:
        BRG_LOG_RATELIMITED("ovl", BRG_LOG_WARN, "login failed (%s); retrying",
                            ev->reason);
        break;
    case OVL_NEV_SUPERNODE_LOST:
        ovl_uv_contact_format(c, sizeof(c), &ev->supernode);
        BRG_LOGW("ovl", "lost supernode %s; logging in again", c);
        break;
    case OVL_NEV_ROLE_CHANGED:
        BRG_LOGI("ovl", "role changed to %s", ovl_role_name(ev->role));
        break;
    case OVL_NEV_PUBLISHED:
        if (ev->status < 0)
            BRG_LOG_RATELIMITED("ovl", BRG_LOG_WARN, "a %s record was not stored: %s",
                                ovl_rtype_name(ev->rtype),
                                strerror(-ev->status));
        else
            BRG_LOGD("ovl", "%s record stored on %u replicas",
                     ovl_rtype_name(ev->rtype), ev->replicas);
        break;
    case OVL_NEV_LOGGED_OUT:
        BRG_LOGI("ovl", "logged out");
        break;
    case OVL_NEV_LOOKUP:
    case OVL_NEV_BUDDY:
        break;
    }
}

static void on_nat(struct ovl_uvnode *u, const struct ovl_nat_result *r, void *data)
{
    struct brg_ovl *o = data;
    char refl[OVL_STUN_ADDR_TEXT_MAX];

    (void)u;
    ovl_stun_addr_format(refl, sizeof(refl), &r->reflexive);
    BRG_LOGI("ovl", "NAT type %s (mapping %s, filtering %s), reflexive address %s",
             ovl_nat_type_name(r->type), ovl_nat_mapping_name(r->mapping),
             ovl_nat_filtering_name(r->filtering), refl);
    /* Room records carry the media address as configured: behind a NAT
     * that is a private one, unless the operator says otherwise. */
    if (!o->nat_hint_logged && !o->b->cfg->advertise_ip[0] && r->type != OVL_NAT_OPEN &&
        r->type != OVL_NAT_UNKNOWN && r->type != OVL_NAT_UDP_BLOCKED) {
        o->nat_hint_logged = true;
        BRG_LOGW("ovl", "this bridge is behind a NAT; room records advertise a private address: set advertise_ip and forward the media port (%d, UDP and TCP)",
                 o->b->cfg->media_port);
    }
}

static void on_closed(void *data)
{
    struct brg_ovl *o = data;

    o->u = NULL;
    BRG_LOGI("ovl", "overlay node closed");
}

/* ---- room records ---- */

/* Loads and checks the room certificate of @room (needed under a login
 * authority). Returns 0, or a negative errno with the reason in @why. */
static int cert_load(struct brg_ovl *o, const char *room, uint8_t cert[OVL_CERT_LEN], char *why,
                     size_t whylen)
{
    char path[PATH_MAX];
    struct ovl_cert c;
    enum ovl_rerr err;
    int rc;

    if (snprintf(path, sizeof(path), "%s/room-certs/%s.cert", o->b->cfg->state_dir, room) >=
        (int)sizeof(path)) {
        snprintf(why, whylen, "the certificate's path is too long");
        return -ENAMETOOLONG;
    }
    rc = ovl_cert_read_file(path, cert, why, whylen);
    if (rc)
        return rc;
    if (ovl_cert_verify(&c, cert, OVL_CERT_LEN, o->authority, (uint64_t)time(NULL), &err) != 0) {
        snprintf(why, whylen, "%s: not signed by the login authority, or expired", path);
        return -EBADMSG;
    }
    if (!ovl_cert_matches(&c, OVL_CERT_ROOM, room, strlen(room), o->pk)) {
        snprintf(why, whylen, "%s: certifies another room, kind or key (this bridge's key is the subject)",
                 path);
        return -EBADMSG;
    }
    return 0;
}

/* Publishes @room's record (the node refreshes it from then on). */
static void room_publish(struct brg_ovl *o, const char *room)
{
    uint8_t cert[OVL_CERT_LEN];
    char why[PATH_MAX + 128];
    int rc;

    if (!o->media_known)
        return;
    if (o->has_authority) {
        rc = cert_load(o, room, cert, why, sizeof(why));
        if (rc) {
            BRG_LOGW("ovl", "room %s not published: under a login authority it needs a room certificate (%s)",
                     room, why);
            return;
        }
    }
    rc = ovl_node_publish_room(ovl_uvnode_node(o->u), room, &o->media, 1,
                               (uint16_t)o->b->cfg->media_port, o->has_authority ? cert : NULL,
                               ovl_uvnode_now(o->u));
    if (rc == -ENOSPC)
        BRG_LOGW("ovl", "room %s not published: the node already publishes as many rooms as it can",
                 room);
    else if (rc)
        BRG_LOGW("ovl", "room %s not published: %s", room, strerror(-rc));
}

void brg_overlay_room_added(struct brg *b, const char *room)
{
    struct brg_ovl *o = ovl(b);

    if (!running(o))
        return;
    room_publish(o, room);
    ovl_uvnode_flush(o->u);
}

void brg_overlay_room_removed(struct brg *b, const char *room)
{
    struct brg_ovl *o = ovl(b);
    int rc;

    if (!running(o))
        return;
    rc = ovl_node_withdraw_room(ovl_uvnode_node(o->u), room, ovl_uvnode_now(o->u));
    if (rc && rc != -ENOENT)
        BRG_LOGW("ovl", "the record of room %s was not withdrawn: %s", room,
                 strerror(-rc));
    ovl_uvnode_flush(o->u);
}

/* The address room records carry: our contact's IP (advertise_ip, else
 * the driver's choice), with the media port. */
static int media_addr(struct brg_ovl *o)
{
    const struct brg_config *cfg = o->b->cfg;
    struct ovl_uvnode_status st;

    /* The driver put advertise_ip (or its own choice) in our contact. */
    ovl_uvnode_status(o->u, &st);
    if (st.self.udp.family == OVL_AF_NONE)
        return -EADDRNOTAVAIL;
    o->media = st.self.udp;
    o->media.port = (uint16_t)cfg->media_port;
    o->media_known = true;
    return 0;
}

/* ---- start and stop ---- */

/* A bootstrap entry whose host does not resolve is skipped: the others
 * and the host cache may still do. */
static void bootstrap_bad(const char *entry, void *data)
{
    (void)data;
    BRG_LOGW("ovl", "bootstrap entry %s skipped: its host does not resolve", entry);
}

static enum ovl_role_mode role_mode(const struct brg_config *cfg)
{
    switch (cfg->role) {
    case BRG_ROLE_SUPERNODE: return OVL_ROLE_MODE_SUPERNODE;
    case BRG_ROLE_PEER: return OVL_ROLE_MODE_PEER;
    default: return cfg->bootstrap[0] ? OVL_ROLE_MODE_AUTO : OVL_ROLE_MODE_SUPERNODE;
    }
}

static int node_start(struct brg_ovl *o, const struct ovl_identity *id,
                      const struct ovl_contact *boot, size_t nboot)
{
    const struct brg_config *cfg = o->b->cfg;
    struct ovl_uvnode_config uc;
    char err[256], hostcache[PATH_MAX];
    int rc;

    memset(&uc, 0, sizeof(uc));
    if (snprintf(hostcache, sizeof(hostcache), "%s/hostcache.bin", cfg->state_dir) >=
        (int)sizeof(hostcache)) {
        BRG_LOGE("ovl", "the state directory's path is too long");
        return -ENAMETOOLONG;
    }
    uc.node.identity = id;
    uc.node.role_mode = role_mode(cfg);
    uc.node.authority = o->has_authority ? o->authority : NULL;
    uc.node.bootstrap = nboot ? boot : NULL;
    uc.node.nbootstrap = nboot;
    /* The core keeps dead_after and peer_timeout above the keep-alives. */
    uc.node.timing.keepalive = (uint64_t)cfg->keepalive_s * NS_PER_S;
    uc.bind_ip = cfg->media_addr;
    uc.advertise_ip = cfg->advertise_ip[0] ? cfg->advertise_ip : NULL;
    uc.port = (uint16_t)cfg->overlay_port;
    uc.listen_tcp = true;       /* supernode-capable: always reachable on TCP */
    uc.listen_443 = cfg->overlay_tcp443;
    uc.hostcache_path = hostcache;     /* the driver keeps a copy */
    uc.nat_discovery = true;
    uc.software = brg_config_version();
    uc.on_event = on_event;
    uc.on_nat = on_nat;
    uc.data = o;
    /* With port 0 the driver itself retries numbers free for UDP and TCP. */
    rc = ovl_uvnode_new(&o->u, o->b->loop, &uc, err, sizeof(err));
    if (rc)
        BRG_LOGE("ovl", "cannot start the overlay on %s port %d: %s (set --overlay-port, or --no-overlay)",
                 cfg->media_addr, cfg->overlay_port, err);
    return rc;
}

static void log_started(struct brg_ovl *o, size_t nboot)
{
    const struct brg_config *cfg = o->b->cfg;
    struct ovl_uvnode_status st;
    char c[OVL_UV_CONTACT_TEXT_MAX];

    ovl_uvnode_status(o->u, &st);
    ovl_uv_contact_format(c, sizeof(c), &st.self);
    if (o->seed)
        BRG_LOGI("ovl", "overlay on udp+tcp port %u%s, seed supernode of its own overlay (no bootstrap); contact %s",
                 st.udp_port, cfg->overlay_tcp443 ? " and tcp 443" : "", c);
    else
        BRG_LOGI("ovl", "overlay on udp+tcp port %u%s, role %s, %zu bootstrap contacts, %u in the host cache; contact %s",
                 st.udp_port, cfg->overlay_tcp443 ? " and tcp 443" : "", mode_name(cfg->role), nboot,
                 st.hostcache, c);
}

int brg_overlay_start(struct brg *b, const struct ovl_identity *id)
{
    const struct brg_config *cfg = b->cfg;
    struct ovl_contact *boot = NULL;
    size_t nboot = 0;
    struct brg_ovl *o;
    struct brg_room_rt *r, *tmp;
    int rc;

    if (!cfg->overlay) {
        BRG_LOGI("ovl", "overlay disabled");
        return 0;
    }
    o = calloc(1, sizeof(*o));
    if (!o || ovl_uv_contacts_parse(cfg->bootstrap, &boot, &nboot, bootstrap_bad, NULL) != 0) {
        free(o);
        return -ENOMEM;
    }
    o->b = b;
    o->seed = cfg->role == BRG_ROLE_AUTO && !cfg->bootstrap[0];
    memcpy(o->pk, id->ed_pk, OVL_ED_PK_LEN);
    o->has_authority = cfg->login_authority[0] &&
                       ovl_pk_from_text(o->authority, cfg->login_authority) == 0;
    if (cfg->bootstrap[0] && nboot == 0)
        BRG_LOGW("ovl", "no bootstrap entry resolves; only the host cache is left");
    else if (cfg->role == BRG_ROLE_PEER && !cfg->bootstrap[0])
        BRG_LOGW("ovl", "role peer without bootstrap: only the host cache is left");
    rc = node_start(o, id, boot, nboot);
    free(boot);
    if (rc) {
        free(o);
        return rc;
    }
    b->overlay = o;
    log_started(o, nboot);
    if (media_addr(o) != 0)
        BRG_LOGW("ovl", "no address to advertise for the media port: rooms are not published (set advertise_ip)");
    HASH_ITER(hh, b->rooms, r, tmp)
        room_publish(o, r->rec.name);
    ovl_uvnode_flush(o->u);
    return 0;
}

void brg_overlay_stop(struct brg *b, bool graceful)
{
    struct brg_ovl *o = ovl(b);

    if (!o || o->closing || !o->u)
        return;
    o->closing = true;
    ovl_uvnode_close(o->u, graceful, on_closed, o);
}

void brg_overlay_free(struct brg *b)
{
    struct brg_ovl *o = ovl(b);

    if (!o)
        return;
    if (o->u)   /* a bug: the loop ended with the node open */
        BRG_LOGE("ovl", "freed while its node was still open");
    free(o);
    b->overlay = NULL;
}

/* ---- status ---- */

bool brg_overlay_status(struct brg *b, struct ovl_uvnode_status *st, uint32_t *rooms)
{
    struct brg_ovl *o = ovl(b);

    if (!running(o))
        return false;
    ovl_uvnode_status(o->u, st);
    *rooms = ovl_node_rooms_published(ovl_uvnode_node(o->u));
    return true;
}

/* Unix time of a NAT result reached at @completed_ms on the node's clock. */
static int64_t nat_completed_unix(struct brg_ovl *o, const struct ovl_nat_result *r)
{
    uint64_t now_ms = ovl_uvnode_now(o->u) / 1000000u;

    if (r->runs == 0 || r->completed_ms > now_ms)
        return 0;
    return (int64_t)time(NULL) - (int64_t)((now_ms - r->completed_ms) / 1000u);
}

void brg_overlay_api(struct brg *b, struct api_result *res)
{
    struct brg_ovl *o = ovl(b);
    struct ovl_uvnode_status st;
    struct brg_overlay_view v;

    if (!o) {
        brg_api_error(res, 503, NULL, "the overlay is disabled on this bridge (overlay = false)");
        return;
    }
    if (!running(o)) {
        brg_api_error(res, 503, NULL, "the overlay is shutting down");
        return;
    }
    ovl_uvnode_status(o->u, &st);
    v = (struct brg_overlay_view){
        .public_key = o->pk,
        .mode = mode_name(b->cfg->role),
        .seed = o->seed,
        .rooms_published = ovl_node_rooms_published(ovl_uvnode_node(o->u)),
        .nat_completed_unix = nat_completed_unix(o, &st.nat),
        .st = &st,
    };
    res->body = brg_overlay_json(&v);
    if (!res->body) {
        brg_api_error(res, 503, NULL, "out of memory");
        return;
    }
    res->status = 200;
}

/* ---- JSON (pure) ---- */

static json_t *contact_json(const struct ovl_contact *c)
{
    char text[OVL_UV_CONTACT_TEXT_MAX];

    ovl_uv_contact_format(text, sizeof(text), c);
    return json_string(text);
}

static json_t *nat_json(const struct ovl_uvnode_status *st, int64_t completed_unix)
{
    const struct ovl_nat_result *r = &st->nat;
    char refl[OVL_STUN_ADDR_TEXT_MAX], when[32];
    json_t *at = json_null();

    if (completed_unix > 0) {
        time_t t = (time_t)completed_unix;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        at = json_string(when);
    }
    ovl_stun_addr_format(refl, sizeof(refl), &r->reflexive);
    return json_pack("{s:s, s:s, s:s, s:o, s:I, s:o, s:b}",
                     "type", ovl_nat_type_name(r->type),
                     "mapping", ovl_nat_mapping_name(r->mapping),
                     "filtering", ovl_nat_filtering_name(r->filtering),
                     "reflexive", r->reflexive.family == OVL_STUN_FAMILY_NONE
                                      ? json_null() : json_string(refl),
                     "runs", (json_int_t)r->runs,
                     "completed_at", at,
                     "running", st->nat_running);
}

static uint64_t sum(const uint64_t *v, size_t n)
{
    uint64_t s = 0;

    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

static json_t *counters_json(const struct ovl_uvnode_status *st)
{
    static const struct ovl_node_stats zero;
    const struct ovl_node_stats *s = st->stats ? st->stats : &zero;
    const struct ovl_uvnode_counters *d = &st->counters;
    json_t *j = json_object();

#define C(name, v) json_object_set_new(j, name, json_integer((json_int_t)(v)))
    C("rx_msgs", s->rx_msgs);
    C("tx_msgs", s->tx_msgs);
    C("rx_bytes", s->rx_bytes);
    C("tx_bytes", s->tx_bytes);
    C("rpc_sent", s->rpc_sent);
    C("rpc_timeouts", s->rpc_timeouts);
    C("handshakes", s->handshakes);
    C("logins_ok", s->logins_ok);
    C("logins_refused", s->logins_refused);
    C("stores_ok", s->stores_ok);
    C("stores_refused", s->stores_refused);
    C("searches", s->searches);
    C("notifies", s->notifies);
    C("msg_drops", sum(s->msg_drops, OVL_MD__COUNT));
    C("record_drops", sum(s->rec_drops, OVL_RERR__COUNT));
    C("dropped", s->dropped);
    C("stun_answered", d->stun_answered);
    C("stun_dropped", d->stun_dropped);
    C("tcp_accepted", d->tcp_accepted);
    C("tcp_refused_cap", d->tcp_refused_cap);
    C("tcp_write_dropped", d->tcp_write_dropped);
    C("udp_send_errors", d->udp_send_errors);
    C("rate_limited", s->rate_limited);
    C("conns_unauth_closed", s->conns_unauth_closed);
#undef C
    return j;
}

json_t *brg_overlay_json(const struct brg_overlay_view *v)
{
    const struct ovl_uvnode_status *st = v->st;
    char pk[OVL_PK_TEXT_LEN], id[OVL_NODE_ID_HEX_LEN];
    uint8_t node_id[OVL_NODE_ID_LEN];

    ovl_pk_to_text(pk, v->public_key);
    ovl_node_id(node_id, v->public_key);
    ovl_node_id_to_hex(id, node_id);
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:b, s:b, s:o, s:I, s:I, s:o, s:I, s:I,"
                     " s:{s:I, s:I}, s:I, s:I, s:o, s:I}",
                     "node_id", id,
                     "public_key", pk,
                     "contact", contact_json(&st->self),
                     "role", ovl_role_name(st->role),
                     "mode", v->mode,
                     "seed", v->seed,
                     "logged_in", st->logged_in,
                     "supernode", st->has_supernode ? contact_json(&st->supernode) : json_null(),
                     "udp_port", (json_int_t)st->udp_port,
                     "tcp_port", (json_int_t)st->tcp_port,
                     "nat", nat_json(st, v->nat_completed_unix),
                     "hostcache_size", (json_int_t)st->hostcache,
                     "attached_peers", (json_int_t)st->attached,
                     "dht",
                         "routing_contacts", (json_int_t)st->rt_contacts,
                         "records", (json_int_t)st->records,
                     "tcp_connections", (json_int_t)st->conns,
                     "rooms_published", (json_int_t)v->rooms_published,
                     "counters", counters_json(st),
                     "memory_bytes", (json_int_t)st->memory);
}
