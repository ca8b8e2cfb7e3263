/*
 * test_client.c: chorus-client's overlay-mode output (client-min/
 * cli_ovl_report.h). The multi-process overlay test reads these JSON lines,
 * so the keys and their types are checked here, line by line, for every
 * presence state; the human sentences are checked against the forms the
 * help and README show.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_ovl_report.h"

/* One report writing into memory. */
struct capture {
    struct cli_ovl_report r;
    char *buf;
    size_t len;
    FILE *f;
};

static void cap_open(struct capture *c, bool json)
{
    memset(c, 0, sizeof(*c));
    c->f = open_memstream(&c->buf, &c->len);
    cr_assert_not_null(c->f);
    cli_ovl_report_init(&c->r, json, c->f);
}

/* Closes the stream; the text stays in c->buf (freed by cap_free). */
static const char *cap_text(struct capture *c)
{
    fclose(c->f);
    c->f = NULL;
    return c->buf;
}

static void cap_free(struct capture *c)
{
    if (c->f)
        fclose(c->f);
    free(c->buf);
}

/* Parses the single JSON line in @text. */
static json_t *one_json(const char *text)
{
    json_error_t err;
    json_t *j;

    cr_assert_eq(strchr(text, '\n'), text + strlen(text) - 1, "one line: %s", text);
    j = json_loads(text, 0, &err);
    cr_assert_not_null(j, "%s: %s", text, err.text);
    return j;
}

static void v4(struct ovl_addr *a, uint8_t a0, uint8_t a1, uint8_t a2, uint8_t a3, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->family = OVL_AF_INET;
    a->ip[0] = a0;
    a->ip[1] = a1;
    a->ip[2] = a2;
    a->ip[3] = a3;
    a->port = port;
}

/* A supernode contact with key bytes all @k. */
static void contact(struct ovl_contact *c, uint8_t k)
{
    memset(c, 0, sizeof(*c));
    memset(c->identity, k, sizeof(c->identity));
    v4(&c->udp, 10, 0, 0, 1, 40700);
    c->tcp_port = 40700;
}

static void online_alice(struct ovl_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = OVL_NEV_LOOKUP;
    ev->rtype = OVL_R_PRESENCE;
    strcpy(ev->name, "alice");
    ev->state = OVL_PS_ONLINE;
    memset(ev->owner, 7, sizeof(ev->owner));
    ev->naddr = 2;
    v4(&ev->addrs[0], 1, 2, 3, 4, 5);
    v4(&ev->addrs[1], 192, 168, 1, 9, 5);
    contact(&ev->owner_supernode, 9);
    ev->rounds = 2;
    ev->messages = 6;
    ev->started = 1000000000ull;
}

Test(addr, text)
{
    struct ovl_addr a;
    char t[CLI_OVL_ADDR_TEXT_MAX];

    v4(&a, 1, 2, 3, 4, 5678);
    ovl_addr_to_text(t, sizeof(t), &a);
    cr_assert_str_eq(t, "1.2.3.4:5678");
    memset(&a, 0, sizeof(a));
    a.family = OVL_AF_INET6;
    a.ip[0] = 0x20;
    a.ip[1] = 0x01;
    a.ip[2] = 0x0d;
    a.ip[3] = 0xb8;
    a.ip[15] = 1;
    a.port = 5;
    ovl_addr_to_text(t, sizeof(t), &a);
    cr_assert_str_eq(t, "[2001:db8::1]:5");
    a.family = OVL_AF_NONE;
    ovl_addr_to_text(t, sizeof(t), &a);
    cr_assert_str_eq(t, "none");
}

Test(time, text)
{
    char t[64];

    cli_ovl_time_text(t, sizeof(t), 0);
    cr_assert_str_eq(t, "1970-01-01 00:00:00 UTC");
    cli_ovl_time_text(t, sizeof(t), 1795687200); /* 2026-11-26 10:00:00 */
    cr_assert_str_eq(t, "2026-11-26 10:00:00 UTC");
}

Test(states, names)
{
    cr_assert_str_eq(cli_ovl_state_name(OVL_PS_ONLINE), "online");
    cr_assert_str_eq(cli_ovl_state_name(OVL_PS_OFFLINE), "offline");
    cr_assert_str_eq(cli_ovl_state_name(OVL_PS_UNKNOWN), "unknown");
    cr_assert_str_eq(cli_ovl_state_name(OVL_PS_FAILED), "failed");
}

Test(json, lookup_online)
{
    struct capture c;
    struct ovl_event ev;
    char key[OVL_PK_TEXT_LEN];
    json_t *j, *addrs;

    online_alice(&ev);
    cap_open(&c, true);
    cli_ovl_report_lookup(&c.r, &ev, ev.started + 12500000ull); /* 12.5 ms */
    j = one_json(cap_text(&c));
    ovl_pk_to_text(key, ev.owner);
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "lookup");
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "handle");
    cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "alice");
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "online");
    cr_assert_str_eq(json_string_value(json_object_get(j, "owner")), key);
    addrs = json_object_get(j, "addrs");
    cr_assert(json_is_array(addrs));
    cr_assert_eq(json_array_size(addrs), 2);
    cr_assert_str_eq(json_string_value(json_array_get(addrs, 0)), "1.2.3.4:5");
    cr_assert_str_eq(json_string_value(json_array_get(addrs, 1)), "192.168.1.9:5");
    cr_assert_eq(json_integer_value(json_object_get(j, "tcp_port")), 0);
    cr_assert(json_is_string(json_object_get(j, "supernode")));
    cr_assert_not_null(strstr(json_string_value(json_object_get(j, "supernode")),
                              "@10.0.0.1:40700"));
    cr_assert(json_is_null(json_object_get(j, "last_seen")));
    cr_assert_eq(json_integer_value(json_object_get(j, "rounds")), 2);
    cr_assert_eq(json_integer_value(json_object_get(j, "messages")), 6);
    cr_assert_eq(json_integer_value(json_object_get(j, "ms")), 12);
    cr_assert_null(json_object_get(j, "error"));
    json_decref(j);
    cap_free(&c);
}

Test(json, lookup_offline_unknown_failed_room)
{
    struct capture c;
    struct ovl_event ev;
    json_t *j;

    memset(&ev, 0, sizeof(ev));
    strcpy(ev.name, "bob");
    ev.rtype = OVL_R_PRESENCE;
    ev.state = OVL_PS_OFFLINE;
    memset(ev.owner, 3, sizeof(ev.owner));
    ev.last_seen = 1795687200;
    cap_open(&c, true);
    cli_ovl_report_lookup(&c.r, &ev, 0);
    j = one_json(cap_text(&c));
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "offline");
    cr_assert_eq(json_integer_value(json_object_get(j, "last_seen")), 1795687200);
    cr_assert(json_is_null(json_object_get(j, "supernode")));
    cr_assert_eq(json_array_size(json_object_get(j, "addrs")), 0);
    json_decref(j);
    cap_free(&c);

    memset(&ev, 0, sizeof(ev));
    strcpy(ev.name, "carol");
    ev.state = OVL_PS_UNKNOWN;
    cap_open(&c, true);
    cli_ovl_report_lookup(&c.r, &ev, 0);
    j = one_json(cap_text(&c));
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "unknown");
    cr_assert(json_is_null(json_object_get(j, "owner")));
    cr_assert(json_is_null(json_object_get(j, "last_seen")));
    json_decref(j);
    cap_free(&c);

    ev.state = OVL_PS_FAILED;
    ev.status = -ETIMEDOUT;
    cap_open(&c, true);
    cli_ovl_report_lookup(&c.r, &ev, 0);
    j = one_json(cap_text(&c));
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "failed");
    cr_assert(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    cap_free(&c);

    memset(&ev, 0, sizeof(ev));
    strcpy(ev.name, "demo");
    ev.rtype = OVL_R_ROOM;
    ev.state = OVL_PS_ONLINE;
    memset(ev.owner, 5, sizeof(ev.owner));
    ev.naddr = 1;
    v4(&ev.addrs[0], 127, 0, 0, 1, 33033);
    ev.tcp_port = 33033;
    cap_open(&c, true);
    cli_ovl_report_lookup(&c.r, &ev, 0);
    j = one_json(cap_text(&c));
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "room");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "addrs"), 0)),
                     "127.0.0.1:33033");
    cr_assert_eq(json_integer_value(json_object_get(j, "tcp_port")), 33033);
    json_decref(j);
    cap_free(&c);
}

Test(json, other_events)
{
    struct capture c;
    struct ovl_event ev;
    struct ovl_nat_result nat;
    uint8_t id[OVL_NODE_ID_LEN];
    json_t *j;

    memset(&ev, 0, sizeof(ev));
    contact(&ev.supernode, 9);
    memset(id, 0xab, sizeof(id));
    cap_open(&c, true);
    cli_ovl_report_logged_in(&c.r, &ev, OVL_ROLE_PEER, id);
    j = one_json(cap_text(&c));
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "logged_in");
    cr_assert_str_eq(json_string_value(json_object_get(j, "role")), "peer");
    cr_assert_not_null(strstr(json_string_value(json_object_get(j, "supernode")), "@10.0.0.1:40700"));
    cr_assert_eq(strlen(json_string_value(json_object_get(j, "node_id"))), 64);
    json_decref(j);
    cap_free(&c);

    memset(&nat, 0, sizeof(nat));
    nat.type = OVL_NAT_PORT_RESTRICTED;
    nat.mapping = OVL_NAT_MAP_INDEPENDENT;
    nat.filtering = OVL_NAT_FILTER_ADDRESS_PORT;
    nat.reflexive.family = OVL_STUN_FAMILY_IPV4;
    nat.reflexive.port = 5678;
    memcpy(nat.reflexive.ip, "\x01\x02\x03\x04", 4);
    cap_open(&c, true);
    cli_ovl_report_nat(&c.r, &nat);
    j = one_json(cap_text(&c));
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "nat");
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "port-restricted");
    cr_assert_str_eq(json_string_value(json_object_get(j, "reflexive")), "1.2.3.4:5678");
    cr_assert(json_is_string(json_object_get(j, "mapping")));
    cr_assert(json_is_string(json_object_get(j, "filtering")));
    json_decref(j);
    cap_free(&c);

    ev.rtype = OVL_R_PRESENCE;
    ev.replicas = 3;
    cap_open(&c, true);
    cli_ovl_report_published(&c.r, &ev);
    j = one_json(cap_text(&c));
    cr_assert_str_eq(json_string_value(json_object_get(j, "rtype")), "presence");
    cr_assert_eq(json_integer_value(json_object_get(j, "replicas")), 3);
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), 0);
    json_decref(j);
    cap_free(&c);

    cap_open(&c, true);
    cli_ovl_report_simple(&c.r, "logged_out", "logged out");
    cli_ovl_report_login_failed(&c.r, "bad \x01 reason");
    cr_assert_str_eq(cap_text(&c),
                     "{\"event\":\"logged_out\"}\n"
                     "{\"event\":\"login_failed\",\"reason\":\"bad ? reason\"}\n");
    cap_free(&c);
}

Test(json, buddy)
{
    struct capture c;
    struct ovl_event ev;
    json_t *j;

    online_alice(&ev);
    ev.kind = OVL_NEV_BUDDY;
    cap_open(&c, true);
    cli_ovl_report_buddy(&c.r, &ev);
    j = one_json(cap_text(&c));
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "buddy");
    cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "alice");
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "online");
    cr_assert(json_is_null(json_object_get(j, "last_seen")));
    json_decref(j);
    cap_free(&c);
}

Test(human, sentences)
{
    struct capture c;
    struct ovl_event ev;
    char key[OVL_PK_TEXT_LEN], sn[OVL_UV_CONTACT_TEXT_MAX], want[512];

    online_alice(&ev);
    ovl_uv_contact_format(sn, sizeof(sn), &ev.owner_supernode);
    cap_open(&c, false);
    cli_ovl_report_lookup(&c.r, &ev, 0);
    ev.rounds = 1;
    ev.naddr = 1;
    ev.kind = OVL_NEV_BUDDY;
    cli_ovl_report_buddy(&c.r, &ev);
    memset(&ev, 0, sizeof(ev));
    strcpy(ev.name, "bob");
    ev.state = OVL_PS_OFFLINE;
    ev.last_seen = 1795687200;
    cli_ovl_report_lookup(&c.r, &ev, 0);
    strcpy(ev.name, "carol");
    ev.state = OVL_PS_UNKNOWN;
    cli_ovl_report_lookup(&c.r, &ev, 0);
    strcpy(ev.name, "demo");
    ev.rtype = OVL_R_ROOM;
    ev.state = OVL_PS_ONLINE;
    memset(ev.owner, 5, sizeof(ev.owner));
    ev.naddr = 1;
    v4(&ev.addrs[0], 1, 2, 3, 4, 33033);
    ev.tcp_port = 33033;
    cli_ovl_report_lookup(&c.r, &ev, 0);
    ovl_pk_to_text(key, ev.owner);
    snprintf(want, sizeof(want),
             "alice: online at 1.2.3.4:5, 192.168.1.9:5 via %s (2 rounds)\n"
             "buddy alice: online at 1.2.3.4:5 via %s\n"
             "bob: offline, last seen 2026-11-26 10:00:00 UTC\n"
             "carol: unknown\n"
             "room demo: hosted by %s at 1.2.3.4:33033 (tcp 33033)\n",
             sn, sn, key);
    cr_assert_str_eq(cap_text(&c), want);
    cap_free(&c);
}
