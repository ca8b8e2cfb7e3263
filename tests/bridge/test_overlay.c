/*
 * test_overlay.c: the bridge's overlay node (bridge/src/brg_overlay.c) and
 * GET /v1/overlay's answer, without the HTTP layer (tests/api covers that):
 *
 *   - 503 when the overlay is off;
 *   - the JSON of a made-up status has exactly the shape the OpenAPI
 *     document's Overlay schema describes (required members, no others,
 *     types), so the document cannot drift from the code;
 *   - a real node on a real loop (127.0.0.1, an ephemeral port): a seed
 *     bridge is a supernode at once, logged in, stores its own room's
 *     record, answers the route, and closes without leaking a handle;
 *   - under a login authority a room is published only with a valid room
 *     certificate in <state_dir>/room-certs/<room>.cert.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "brg.h"
#include "brg_log.h"
#include "brg_overlay.h"
#include "ovl_record.h"

#ifndef CHORUS_OPENAPI_PATH
#error "CHORUS_OPENAPI_PATH must name docs/openapi.json"
#endif

enum { WAIT_MS = 5000, LOG_KEEP = 64 };

/* ---- captured log lines ---- */

static char logged[LOG_KEEP][BRG_LOG_LINE_MAX];
static unsigned nlogged;

static void sink(enum brg_log_level level, const char *topic, const char *line, void *data)
{
    (void)level;
    (void)topic;
    (void)data;
    if (nlogged < LOG_KEEP)
        snprintf(logged[nlogged++], sizeof(logged[0]), "%s", line);
}

static const char *log_last(void)
{
    return nlogged ? logged[nlogged - 1] : "(nothing logged)";
}

static bool log_has(const char *needle)
{
    for (unsigned i = 0; i < nlogged; i++)
        if (strstr(logged[i], needle))
            return true;
    return false;
}

/* ---- a minimal bridge around the overlay ---- */

struct fixture {
    struct brg b;
    struct brg_config cfg;
    uv_loop_t loop;
    struct ovl_identity id;
    char dir[64];
};

static void fx_init(struct fixture *f, const char *authority)
{
    char err[256];

    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/chorus-test-overlay.XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    cr_assert_eq(brg_config_init(&f->cfg), 0);
    cr_assert_eq(brg_config_set(&f->cfg, "state_dir", f->dir, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(brg_config_set(&f->cfg, "media_addr", "127.0.0.1", NULL, err, sizeof(err)), 0);
    cr_assert_eq(brg_config_set(&f->cfg, "overlay_port", "0", NULL, err, sizeof(err)), 0);
    if (authority)
        cr_assert_eq(brg_config_set(&f->cfg, "login_authority", authority, NULL, err,
                                    sizeof(err)), 0, "%s", err);
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    cr_assert_eq(ovl_identity_generate(&f->id, NULL), 0);
    f->b.cfg = &f->cfg;
    f->b.loop = &f->loop;
    nlogged = 0;
    brg_log_set_sink(sink, NULL);
}

static void fx_room(struct fixture *f, const char *name)
{
    struct brg_room_rt *r = calloc(1, sizeof(*r));

    cr_assert_not_null(r);
    snprintf(r->rec.name, sizeof(r->rec.name), "%s", name);
    r->b = &f->b;
    HASH_ADD_STR(f->b.rooms, rec.name, r);
}

/* Runs the loop until the node is logged in with at least @records
 * stored, or WAIT_MS passed. */
static bool fx_wait(struct fixture *f, uint32_t records)
{
    struct ovl_uvnode_status st;
    uint32_t rooms;

    for (int i = 0; i < WAIT_MS / 5; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (brg_overlay_status(&f->b, &st, &rooms) && st.logged_in && st.records >= records)
            return true;
        usleep(5000);
    }
    return false;
}

/* Stops the node gracefully and checks that nothing is left on the loop. */
static void fx_fini(struct fixture *f)
{
    struct brg_room_rt *r, *tmp;
    char cmd[128];

    brg_overlay_stop(&f->b, true);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    brg_overlay_free(&f->b);
    cr_expect_eq(uv_loop_close(&f->loop), 0, "the overlay left a handle open");
    HASH_ITER(hh, f->b.rooms, r, tmp) {
        HASH_DEL(f->b.rooms, r);
        free(r);
    }
    brg_config_free(&f->cfg);
    ovl_identity_wipe(&f->id);
    brg_log_set_sink(NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    cr_expect_eq(system(cmd), 0);
}

static json_t *fx_get(struct fixture *f)
{
    struct api_result res = {0};

    brg_overlay_api(&f->b, &res);
    cr_assert_eq(res.status, 200, "GET /v1/overlay: %d %s", res.status, res.detail);
    cr_assert_not_null(res.body);
    return res.body;
}

/* ---- a small check of a value against an OpenAPI schema ---- */

static void check_schema(const json_t *v, const json_t *schema, const char *where);

static bool type_is(const json_t *v, const char *type)
{
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "null") == 0)
        return json_is_null(v);
    return false;
}

static void check_object(const json_t *v, const json_t *schema, const char *where)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *req = json_object_get(schema, "required");
    const char *key;
    json_t *member;
    size_t i;
    char sub[256];

    json_array_foreach(req, i, member)
        cr_expect_not_null(json_object_get(v, json_string_value(member)), "%s: no member %s",
                           where, json_string_value(member));
    json_object_foreach((json_t *)v, key, member) {
        const json_t *ps = json_object_get(props, key);

        snprintf(sub, sizeof(sub), "%s.%s", where, key);
        cr_expect(ps || !json_is_false(json_object_get(schema, "additionalProperties")),
                  "%s is not documented", sub);
        if (ps)
            check_schema(member, ps, sub);
    }
}

static void check_schema(const json_t *v, const json_t *schema, const char *where)
{
    const json_t *one = json_object_get(schema, "oneOf");
    const char *type = json_string_value(json_object_get(schema, "type"));
    const json_t *en = json_object_get(schema, "enum");

    if (one) {
        size_t i;
        json_t *alt;
        bool any = false;

        json_array_foreach(one, i, alt)
            any = any || type_is(v, json_string_value(json_object_get(alt, "type")));
        cr_expect(any, "%s: no alternative of oneOf matches", where);
        return;
    }
    cr_assert_not_null(type, "%s: schema without a type", where);
    cr_expect(type_is(v, type), "%s: not a%s %s", where, type[0] == 'i' || type[0] == 'o' ? "n" : "",
              type);
    if (json_is_object(v))
        check_object(v, schema, where);
    if (json_is_integer(v) && json_object_get(schema, "minimum"))
        cr_expect_geq(json_integer_value(v), json_integer_value(json_object_get(schema, "minimum")),
                      "%s below its minimum", where);
    if (en) {
        size_t i;
        json_t *e;
        bool found = false;

        json_array_foreach(en, i, e)
            found = found || json_equal(e, v);
        cr_expect(found, "%s: value not in its enum", where);
    }
}

static json_t *overlay_schema(void)
{
    json_error_t jerr;
    json_t *doc = json_load_file(CHORUS_OPENAPI_PATH, 0, &jerr);
    json_t *s;

    cr_assert_not_null(doc, "%s: %s", CHORUS_OPENAPI_PATH, jerr.text);
    s = json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Overlay");
    cr_assert_not_null(s, "no Overlay schema");
    json_incref(s);
    json_decref(doc);
    return s;
}

/* ---- tests ---- */

Test(overlay, disabled_is_503)
{
    struct brg b;
    struct brg_config cfg;
    struct api_result res = {0};
    struct ovl_identity id;

    memset(&b, 0, sizeof(b));
    cr_assert_eq(brg_config_init(&cfg), 0);
    cfg.overlay = false;
    b.cfg = &cfg;
    cr_assert_eq(ovl_identity_generate(&id, NULL), 0);
    cr_assert_eq(brg_overlay_start(&b, &id), 0);
    cr_assert_null(b.overlay);
    brg_overlay_api(&b, &res);
    cr_expect_eq(res.status, 503);
    cr_expect_null(res.body);
    cr_expect(strstr(res.detail, "disabled") != NULL, "detail: %s", res.detail);
    /* The room hooks and shutdown are no-ops. */
    brg_overlay_room_added(&b, "r");
    brg_overlay_room_removed(&b, "r");
    brg_overlay_stop(&b, true);
    brg_overlay_free(&b);
    brg_config_free(&cfg);
}

Test(overlay, json_matches_the_openapi_schema)
{
    struct ovl_uvnode_status st;
    struct ovl_node_stats stats;
    struct brg_overlay_view v;
    uint8_t pk[OVL_ED_PK_LEN];
    json_t *j, *schema = overlay_schema();

    memset(&st, 0, sizeof(st));
    memset(&stats, 0, sizeof(stats));
    memset(pk, 7, sizeof(pk));
    stats.rx_msgs = 11;
    stats.msg_drops[0] = 2;
    stats.msg_drops[1] = 3;
    st.stats = &stats;
    st.role = OVL_ROLE_PEER;
    st.logged_in = true;
    st.has_supernode = true;
    memset(st.supernode.identity, 9, OVL_ED_PK_LEN);
    ovl_addr_v4(&st.supernode.udp, 0x7f000001u, 33034);
    memcpy(st.self.identity, pk, OVL_ED_PK_LEN);
    ovl_addr_v4(&st.self.udp, 0xc0000201u, 40000);
    st.udp_port = st.tcp_port = 40000;
    st.records = 4;
    st.rt_contacts = 3;
    st.counters.stun_answered = 5;
    st.nat.type = OVL_NAT_CONE;
    st.nat.mapping = OVL_NAT_MAP_INDEPENDENT;
    st.nat.filtering = OVL_NAT_FILTER_ADDRESS;
    st.nat.runs = 2;
    cr_assert_eq(ovl_stun_addr_parse(&st.nat.reflexive, "203.0.113.9:41000"), 0);
    v = (struct brg_overlay_view){ .public_key = pk, .mode = "auto", .seed = false,
                                   .rooms_published = 2, .nat_completed_unix = 1700000000,
                                   .st = &st };

    j = brg_overlay_json(&v);
    cr_assert_not_null(j);
    check_schema(j, schema, "overlay");
    cr_expect_str_eq(json_string_value(json_object_get(j, "role")), "peer");
    cr_expect_eq(strlen(json_string_value(json_object_get(j, "node_id"))), 64);
    cr_expect_str_eq(json_string_value(json_object_get(j, "supernode")),
                     "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk@127.0.0.1:33034");
    cr_expect_str_eq(json_string_value(json_object_get(j, "contact")),
                     "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc@192.0.2.1:40000");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "nat"), "type")), "cone");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "nat"), "reflexive")),
                     "203.0.113.9:41000");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "nat"), "completed_at")),
                     "2023-11-14T22:13:20Z");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "dht"), "records")), 4);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "counters"), "msg_drops")), 5);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "counters"), "stun_answered")),
                 5);
    json_decref(j);

    /* Not attached, no NAT result yet: nulls where the schema allows them. */
    st.has_supernode = false;
    st.nat = (struct ovl_nat_result){0};
    v.nat_completed_unix = 0;
    j = brg_overlay_json(&v);
    check_schema(j, schema, "overlay");
    cr_expect(json_is_null(json_object_get(j, "supernode")));
    cr_expect(json_is_null(json_object_get(json_object_get(j, "nat"), "reflexive")));
    cr_expect(json_is_null(json_object_get(json_object_get(j, "nat"), "completed_at")));
    json_decref(j);
    json_decref(schema);
}

Test(overlay, seed_bridge_publishes_its_rooms)
{
    struct fixture f;
    struct ovl_uvnode_status st;
    uint32_t rooms = 0;
    char pk[OVL_PK_TEXT_LEN];
    json_t *j, *schema = overlay_schema();
    const char *contact;

    fx_init(&f, NULL);
    fx_room(&f, "loaded-at-start");
    cr_assert_eq(brg_overlay_start(&f.b, &f.id), 0, "%s", log_last());
    cr_assert_not_null(f.b.overlay);
    brg_overlay_room_added(&f.b, "created-later");
    cr_assert(fx_wait(&f, 2), "the seed did not log in and store both room records");

    j = fx_get(&f);
    check_schema(j, schema, "overlay");
    ovl_pk_to_text(pk, f.id.ed_pk);
    cr_expect_str_eq(json_string_value(json_object_get(j, "public_key")), pk);
    cr_expect_str_eq(json_string_value(json_object_get(j, "role")), "supernode");
    cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "auto");
    cr_expect(json_is_true(json_object_get(j, "seed")));
    cr_expect(json_is_true(json_object_get(j, "logged_in")));
    cr_expect_eq(json_integer_value(json_object_get(j, "rooms_published")), 2);
    contact = json_string_value(json_object_get(j, "contact"));
    cr_assert_not_null(contact);
    cr_expect(strncmp(contact, pk, strlen(pk)) == 0 && strstr(contact, "@127.0.0.1:"),
              "contact %s", contact);
    cr_expect_neq(json_integer_value(json_object_get(j, "udp_port")), 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "udp_port")),
                 json_integer_value(json_object_get(j, "tcp_port")));
    json_decref(j);

    brg_overlay_room_removed(&f.b, "created-later");
    cr_assert(brg_overlay_status(&f.b, &st, &rooms));
    cr_expect_eq(rooms, 1, "a withdrawn room still counts as published");
    cr_expect(log_has("logged in as a supernode"), "no log line for the login");

    fx_fini(&f);
    json_decref(schema);
}

/* Writes a room certificate for @room and @subject, signed by @auth. */
static void write_cert(const char *dir, const char *room, const struct ovl_identity *auth,
                       const uint8_t *subject, const char *file)
{
    struct ovl_cert c = {0};
    uint8_t cert[OVL_CERT_LEN];
    char path[256];
    FILE *fp;

    c.kind = OVL_CERT_ROOM;
    c.name_len = (uint8_t)strlen(room);
    memcpy(c.name, room, c.name_len);
    memcpy(c.subject, subject, OVL_ED_PK_LEN);
    c.not_before = (uint64_t)time(NULL) - 60;
    c.not_after = (uint64_t)time(NULL) + 86400;
    cr_assert_eq(ovl_cert_sign(cert, auth, &c), 0);
    snprintf(path, sizeof(path), "%s/room-certs", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/room-certs/%s.cert", dir, file);
    fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    cr_assert_eq(fwrite(cert, 1, sizeof(cert), fp), sizeof(cert));
    fclose(fp);
}

Test(overlay, login_authority_needs_room_certificates)
{
    struct fixture f;
    struct ovl_identity auth;
    struct ovl_uvnode_status st;
    uint32_t rooms = 0;
    char apk[OVL_PK_TEXT_LEN];

    cr_assert_eq(ovl_identity_generate(&auth, NULL), 0);
    ovl_pk_to_text(apk, auth.ed_pk);
    fx_init(&f, apk);
    write_cert(f.dir, "certified", &auth, f.id.ed_pk, "certified");
    write_cert(f.dir, "other-name", &auth, f.id.ed_pk, "misnamed"); /* for another room */
    fx_room(&f, "certified");
    fx_room(&f, "uncertified");
    fx_room(&f, "misnamed");
    cr_assert_eq(brg_overlay_start(&f.b, &f.id), 0, "%s", log_last());
    cr_assert(fx_wait(&f, 1));
    cr_assert(brg_overlay_status(&f.b, &st, &rooms));
    cr_expect_eq(rooms, 1, "only the certified room may be published");
    cr_expect(log_has("room uncertified not published"), "no warning for the room without one");
    cr_expect(log_has("room misnamed not published"), "no warning for the misnamed certificate");

    /* A certificate that appears later is used for a room created later. */
    write_cert(f.dir, "late", &auth, f.id.ed_pk, "late");
    brg_overlay_room_added(&f.b, "late");
    cr_assert(brg_overlay_status(&f.b, &st, &rooms));
    cr_expect_eq(rooms, 2);
    fx_fini(&f);
    ovl_identity_wipe(&auth);
}
