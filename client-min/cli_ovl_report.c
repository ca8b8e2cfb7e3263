/*
 * cli_ovl_report.c: the lines chorus-client's overlay mode prints
 * (cli_ovl_report.h). JSON goes through jansson, which keeps the keys in
 * the order they are packed; human lines through printf. Every line is
 * flushed at once: a harness reading a pipe must not wait for a buffer to
 * fill.
 *
 * Thread: the loop's.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_ovl_report.h"

enum {
    REASON_MAX = 256,
    ADDRS_TEXT_MAX = OVL_PRESENCE_ADDRS_MAX * (CLI_OVL_ADDR_TEXT_MAX + 2),
};

static void say(const struct cli_ovl_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(const struct cli_ovl_report *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(r->out, fmt, ap);
    va_end(ap);
    fputc('\n', r->out);
    fflush(r->out);
}

/* Prints @j as one line and drops it; NULL (out of memory) prints nothing. */
static void emit(const struct cli_ovl_report *r, json_t *j)
{
    char *s;

    if (j == NULL)
        return;
    s = json_dumps(j, JSON_COMPACT);
    if (s) {
        fprintf(r->out, "%s\n", s);
        fflush(r->out);
        free(s);
    }
    json_decref(j);
}

/* Printable ASCII only, so that json_string never refuses it. */
static void clean_text(char *out, size_t cap, const char *in)
{
    size_t i;

    for (i = 0; i + 1 < cap && in[i]; i++)
        out[i] = in[i] >= 0x20 && in[i] <= 0x7e ? in[i] : '?';
    out[i] = '\0';
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

const char *cli_ovl_state_name(enum ovl_presence_state s)
{
    switch (s) {
    case OVL_PS_ONLINE: return "online";
    case OVL_PS_OFFLINE: return "offline";
    case OVL_PS_FAILED: return "failed";
    default: return "unknown";
    }
}

void cli_ovl_time_text(char *out, size_t cap, uint64_t unix_s)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, cap, "%" PRIu64, unix_s);
}

/* The contact as "KEY@IP:PORT", or NULL when it is empty (no identity). */
static const char *contact_or_null(char out[OVL_UV_CONTACT_TEXT_MAX], const struct ovl_contact *c)
{
    if (all_zero(c->identity, sizeof(c->identity)))
        return NULL;
    ovl_uv_contact_format(out, OVL_UV_CONTACT_TEXT_MAX, c);
    return out;
}

static json_t *addrs_json(const struct ovl_event *ev)
{
    char t[CLI_OVL_ADDR_TEXT_MAX];
    json_t *a = json_array();

    for (unsigned i = 0; a && i < ev->naddr && i < OVL_PRESENCE_ADDRS_MAX; i++) {
        ovl_addr_to_text(t, sizeof(t), &ev->addrs[i]);
        json_array_append_new(a, json_string(t));
    }
    return a;
}

static void addrs_text(char *out, size_t cap, const struct ovl_event *ev)
{
    char t[CLI_OVL_ADDR_TEXT_MAX];
    size_t len = 0;

    snprintf(out, cap, "no address");
    for (unsigned i = 0; i < ev->naddr && i < OVL_PRESENCE_ADDRS_MAX && len < cap; i++) {
        ovl_addr_to_text(t, sizeof(t), &ev->addrs[i]);
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", t);
    }
}

void cli_ovl_report_init(struct cli_ovl_report *r, bool json, FILE *out)
{
    memset(r, 0, sizeof(*r));
    r->json = json;
    r->out = out ? out : stdout;
}

void cli_ovl_report_simple(struct cli_ovl_report *r, const char *event, const char *human)
{
    if (r->json)
        emit(r, json_pack("{s:s}", "event", event));
    else
        say(r, "%s", human);
}

void cli_ovl_report_ready(struct cli_ovl_report *r, struct ovl_uvnode *u)
{
    struct ovl_uvnode_status st;
    char ct[OVL_UV_CONTACT_TEXT_MAX];

    if (r->ready_done)
        return;
    r->ready_done = true;
    ovl_uvnode_status(u, &st);
    ovl_uv_contact_format(ct, sizeof(ct), &st.self);
    if (r->json) {
        emit(r, json_pack("{s:s, s:s, s:i, s:i}", "event", "ready", "contact", ct, "port",
                       (int)st.udp_port, "tcp_port", (int)st.tcp_port));
    } else if (st.tcp_port) {
        say(r, "ready: %s (udp %u, tcp %u)", ct, st.udp_port, st.tcp_port);
    } else {
        say(r, "ready: %s (udp %u, no tcp)", ct, st.udp_port);
    }
}

void cli_ovl_report_logged_in(struct cli_ovl_report *r, const struct ovl_event *ev,
                              enum ovl_role role, const uint8_t node_id[OVL_NODE_ID_LEN])
{
    char sn[OVL_UV_CONTACT_TEXT_MAX], hex[OVL_NODE_ID_HEX_LEN];

    ovl_uv_contact_format(sn, sizeof(sn), &ev->supernode);
    ovl_node_id_to_hex(hex, node_id);
    if (r->json)
        emit(r, json_pack("{s:s, s:s, s:s, s:s}", "event", "logged_in", "supernode", sn, "role",
                       ovl_role_name(role), "node_id", hex));
    else if (role == OVL_ROLE_SUPERNODE)
        say(r, "logged in as supernode %s", sn);
    else
        say(r, "logged in via %s as peer", sn);
}

void cli_ovl_report_login_failed(struct cli_ovl_report *r, const char *reason)
{
    char why[REASON_MAX];

    clean_text(why, sizeof(why), reason);
    if (r->json)
        emit(r, json_pack("{s:s, s:s}", "event", "login_failed", "reason", why));
    else
        say(r, "login failed: %s", why);
}

void cli_ovl_report_lost(struct cli_ovl_report *r, const struct ovl_contact *supernode)
{
    char sn[OVL_UV_CONTACT_TEXT_MAX];

    ovl_uv_contact_format(sn, sizeof(sn), supernode);
    if (r->json)
        emit(r, json_pack("{s:s, s:s}", "event", "supernode_lost", "supernode", sn));
    else
        say(r, "lost supernode %s; re-attaching", sn);
}

void cli_ovl_report_role(struct cli_ovl_report *r, enum ovl_role role)
{
    if (r->json)
        emit(r, json_pack("{s:s, s:s}", "event", "role", "role", ovl_role_name(role)));
    else
        say(r, "role: %s", ovl_role_name(role));
}

/* The human sentence for a record-like answer about @what ("alice",
 * "room demo", "buddy bob"). */
static void say_record(const struct cli_ovl_report *r, const char *what,
                       const struct ovl_event *ev, bool with_rounds)
{
    char addrs[ADDRS_TEXT_MAX], sn[OVL_UV_CONTACT_TEXT_MAX], key[OVL_PK_TEXT_LEN];
    char when[64], rounds[32] = "";
    const char *via;

    switch (ev->state) {
    case OVL_PS_ONLINE:
        addrs_text(addrs, sizeof(addrs), ev);
        if (ev->rtype == OVL_R_ROOM) {
            ovl_pk_to_text(key, ev->owner);
            if (ev->tcp_port)
                say(r, "%s: hosted by %s at %s (tcp %u)", what, key, addrs, ev->tcp_port);
            else
                say(r, "%s: hosted by %s at %s (no tcp)", what, key, addrs);
            return;
        }
        via = contact_or_null(sn, &ev->owner_supernode);
        if (with_rounds)
            snprintf(rounds, sizeof(rounds), " (%u round%s)", ev->rounds,
                     ev->rounds == 1 ? "" : "s");
        say(r, "%s: online at %s%s%s%s", what, addrs, via ? " via " : "", via ? via : "", rounds);
        return;
    case OVL_PS_OFFLINE:
        cli_ovl_time_text(when, sizeof(when), ev->last_seen);
        say(r, "%s: offline, last seen %s", what, when);
        return;
    case OVL_PS_FAILED:
        say(r, "%s: failed (%s)", what, ev->status ? strerror(-ev->status) : "no answer");
        return;
    default:
        say(r, "%s: unknown", what);
        return;
    }
}

void cli_ovl_report_lookup(struct cli_ovl_report *r, const struct ovl_event *ev, uint64_t now)
{
    char key[OVL_PK_TEXT_LEN], sn[OVL_UV_CONTACT_TEXT_MAX], what[OVL_NAME_MAX + 8];
    bool room = ev->rtype == OVL_R_ROOM;
    bool has_owner = !all_zero(ev->owner, sizeof(ev->owner));
    json_int_t us = now > ev->started ? (json_int_t)((now - ev->started) / 1000u) : 0;
    json_t *j;

    if (!r->json) {
        snprintf(what, sizeof(what), "%s%s", room ? "room " : "", ev->name);
        say_record(r, what, ev, true);
        return;
    }
    if (has_owner)
        ovl_pk_to_text(key, ev->owner);
    j = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:o, s:i, s:s?, s:o?, s:i, s:i, s:I, s:I}",
                  "event", "lookup", "kind", room ? "room" : "handle", "name", ev->name,
                  "state", cli_ovl_state_name(ev->state), "owner", has_owner ? key : NULL,
                  "addrs", addrs_json(ev), "tcp_port", (int)ev->tcp_port,
                  "supernode", contact_or_null(sn, &ev->owner_supernode),
                  "last_seen", ev->state == OVL_PS_OFFLINE ? json_integer((json_int_t)ev->last_seen)
                                                           : NULL,
                  "rounds", (int)ev->rounds, "messages", (int)ev->messages, "ms", us / 1000, "us", us);
    if (j && ev->status)
        json_object_set_new(j, "error", json_string(strerror(-ev->status)));
    emit(r, j);
}

void cli_ovl_report_buddy(struct cli_ovl_report *r, const struct ovl_event *ev)
{
    char key[OVL_PK_TEXT_LEN], sn[OVL_UV_CONTACT_TEXT_MAX], what[OVL_NAME_MAX + 8];
    bool has_owner = !all_zero(ev->owner, sizeof(ev->owner));

    if (!r->json) {
        snprintf(what, sizeof(what), "buddy %s", ev->name);
        say_record(r, what, ev, false);
        return;
    }
    if (has_owner)
        ovl_pk_to_text(key, ev->owner);
    emit(r, json_pack("{s:s, s:s, s:s, s:o?, s:s?, s:o, s:s?}", "event", "buddy", "name", ev->name,
                   "state", cli_ovl_state_name(ev->state),
                   "last_seen", ev->state == OVL_PS_OFFLINE ? json_integer((json_int_t)ev->last_seen)
                                                            : NULL,
                   "owner", has_owner ? key : NULL, "addrs", addrs_json(ev),
                   "supernode", contact_or_null(sn, &ev->owner_supernode)));
}

void cli_ovl_report_published(struct cli_ovl_report *r, const struct ovl_event *ev)
{
    if (r->json)
        emit(r, json_pack("{s:s, s:s, s:i, s:i}", "event", "published", "rtype",
                       ovl_rtype_name(ev->rtype), "replicas", (int)ev->replicas, "status", ev->status));
    else if (ev->status)
        say(r, "publishing the %s record failed: %s", ovl_rtype_name(ev->rtype), strerror(-ev->status));
    else
        say(r, "published the %s record (%u replica%s)", ovl_rtype_name(ev->rtype), ev->replicas,
            ev->replicas == 1 ? "" : "s");
}

void cli_ovl_report_nat(struct cli_ovl_report *r, const struct ovl_nat_result *nat)
{
    char refl[OVL_STUN_ADDR_TEXT_MAX];
    bool has_refl = nat->reflexive.family != OVL_STUN_FAMILY_NONE;

    ovl_stun_addr_format(refl, sizeof(refl), &nat->reflexive);
    if (r->json)
        emit(r, json_pack("{s:s, s:s, s:s, s:s, s:s?}", "event", "nat", "type",
                       ovl_nat_type_name(nat->type), "mapping", ovl_nat_mapping_name(nat->mapping),
                       "filtering", ovl_nat_filtering_name(nat->filtering), "reflexive",
                       has_refl ? refl : NULL));
    else
        say(r, "NAT: %s (reflexive %s; mapping %s, filtering %s)", ovl_nat_type_name(nat->type),
            has_refl ? refl : "none", ovl_nat_mapping_name(nat->mapping),
            ovl_nat_filtering_name(nat->filtering));
}

void cli_ovl_report_status(struct cli_ovl_report *r, struct ovl_uvnode *u)
{
    struct ovl_uvnode_status st;
    char sn[OVL_UV_CONTACT_TEXT_MAX], self[OVL_UV_CONTACT_TEXT_MAX];
    const char *via = NULL;

    ovl_uvnode_status(u, &st);
    ovl_uv_contact_format(self, sizeof(self), &st.self);
    if (st.logged_in)
        via = st.role == OVL_ROLE_SUPERNODE ? self : contact_or_null(sn, &st.supernode);
    if (!r->json) {
        say(r, "status: %s, %s%s%s; NAT %s%s; hostcache %u, attached %u, records %u, routing %u, connections %u",
            ovl_role_name(st.role), st.logged_in ? "logged in" : "not logged in",
            via && st.role != OVL_ROLE_SUPERNODE ? " via " : "",
            via && st.role != OVL_ROLE_SUPERNODE ? via : "", ovl_nat_type_name(st.nat.type),
            st.nat_running ? " (running)" : "", st.hostcache, st.attached, st.records,
            st.rt_contacts, st.conns);
        return;
    }
    emit(r, json_pack("{s:s, s:s, s:b, s:s?, s:s, s:i, s:i, s:i, s:s, s:i, s:i, s:i, s:i, s:I}",
                   "event", "status", "role", ovl_role_name(st.role), "logged_in", st.logged_in,
                   "supernode", via, "nat", ovl_nat_type_name(st.nat.type), "hostcache",
                   (int)st.hostcache, "attached", (int)st.attached, "records", (int)st.records,
                   "contact", self, "port", (int)st.udp_port, "tcp_port", (int)st.tcp_port,
                   "rt_contacts", (int)st.rt_contacts, "conns", (int)st.conns, "memory",
                   (json_int_t)st.memory));
}
