/*
 * brg_config.c: the option table (brg_config.h) and what it takes to set
 * one value: the type parsers, the string validators, defaults and the
 * config file reader. The environment, flags, --help and cross-option
 * checks are in brg_config_cli.c; the API token in brg_config_token.c.
 */
#include "brg_config.h"
#include "brg_config_int.h"
#include "brg_log.h"
#include "brg_store.h"
#include "ovl_identity.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CHORUS_VERSION
#define CHORUS_VERSION "0.0.0"
#endif

enum {
    HOST_MAX = 256,       /* host part of a bootstrap entry */
    KEY_TEXT_MAX = 64,    /* a public key: 43 base64url or 64 hex */
};

static int check_nonempty(const char *v, char *why, size_t whylen);
static int check_token(const char *v, char *why, size_t whylen);
static int check_level(const char *v, char *why, size_t whylen);
static int check_room(const char *v, char *why, size_t whylen);
static int check_bootstrap(const char *v, char *why, size_t whylen);
static int check_pubkey(const char *v, char *why, size_t whylen);
static int check_ip_or_empty(const char *v, char *why, size_t whylen);

#define OFF(field) offsetof(struct brg_config, field)

/* THE option table. To add an option: a field in struct brg_config and a
 * row here. Defaults are text, parsed and checked like any other value
 * (a test loads them all). */
static const struct brg_option options[] = {
    { .name = "config", .type = BRG_OPT_STRING, .offset = OFF(config),
      .def = "", .metavar = "PATH",
      .help = "configuration file of 'key = value' lines ('' for none)" },
    { .name = "state_dir", .type = BRG_OPT_STRING, .offset = OFF(state_dir),
      .def = "chorus-state", .check = check_nonempty, .metavar = "DIR",
      .help = "directory for the room database, the API token, the identity "
              "key and the overlay's host cache" },
    { .name = "media_addr", .type = BRG_OPT_ADDR, .offset = OFF(media_addr),
      .def = "0.0.0.0", .metavar = "ADDR",
      .help = "address the media ports listen on" },
    { .name = "media_port", .type = BRG_OPT_PORT, .offset = OFF(media_port),
      .def = "33033", .metavar = "PORT",
      .help = "media port, UDP and TCP" },
    { .name = "api_addr", .type = BRG_OPT_ADDR, .offset = OFF(api_addr),
      .def = "127.0.0.1", .metavar = "ADDR",
      .help = "address the REST API listens on" },
    { .name = "api_port", .type = BRG_OPT_PORT, .offset = OFF(api_port),
      .def = "8080", .metavar = "PORT",
      .help = "REST API port (TCP)" },
    { .name = "api_token", .type = BRG_OPT_STRING, .offset = OFF(api_token),
      .def = "", .check = check_token, .metavar = "TOKEN",
      .flags = BRG_OPT_SECRET,
      .help = "REST API bearer token; when unset, one is generated once "
              "and kept in <state_dir>/api-token" },
    { .name = "rtp_port_min", .type = BRG_OPT_PORT,
      .offset = OFF(rtp_port_min), .def = "40000", .metavar = "PORT",
      .help = "first UDP port for plain RTP legs" },
    { .name = "rtp_port_max", .type = BRG_OPT_PORT,
      .offset = OFF(rtp_port_max), .def = "40999", .metavar = "PORT",
      .help = "last UDP port for plain RTP legs" },
    { .name = "workers", .type = BRG_OPT_INT, .offset = OFF(workers),
      .def = "1", .min = 1, .max = 64, .metavar = "N",
      .help = "mixing threads" },
    { .name = "realtime", .type = BRG_OPT_BOOL, .offset = OFF(realtime),
      .def = "true",
      .help = "ask SCHED_FIFO for the mixing threads (falls back if denied)" },
    { .name = "log_level", .type = BRG_OPT_STRING, .offset = OFF(log_level),
      .def = "info", .check = check_level, .metavar = "LEVEL",
      .help = "default log level: error, warn, info, debug, trace or off" },
    { .name = "log", .type = BRG_OPT_STRING, .offset = OFF(log),
      .def = "", .check = brg_log_spec_check, .metavar = "SPEC",
      .help = "log levels per topic, e.g. 'bridge.udp=debug,ovl=warn'" },
    { .name = "demo_room", .type = BRG_OPT_STRING, .offset = OFF(demo_room),
      .def = "demo", .check = check_room, .metavar = "NAME",
      .help = "room created at startup if missing ('' disables)" },
    { .name = "max_legs", .type = BRG_OPT_INT, .offset = OFF(max_legs),
      .def = "2000", .min = 1, .max = 1000000, .metavar = "N",
      .help = "media legs accepted at most" },
    { .name = "overlay", .type = BRG_OPT_BOOL, .offset = OFF(overlay),
      .def = "true",
      .help = "join the peer-to-peer overlay (overlay_port, UDP and TCP, on "
              "media_addr) and publish every room in it" },
    { .name = "overlay_port", .type = BRG_OPT_INT, .offset = OFF(overlay_port),
      .def = "33034", .min = 0, .max = 65535, .metavar = "PORT",
      .help = "overlay port, UDP and TCP (0: an ephemeral one)" },
    { .name = "overlay_tcp443", .type = BRG_OPT_BOOL, .offset = OFF(overlay_tcp443),
      .def = "false",
      .help = "also accept overlay TCP on port 443, the last rung of a "
              "peer's login ladder behind strict firewalls (needs root or "
              "CAP_NET_BIND_SERVICE)" },
    { .name = "role", .type = BRG_OPT_CHOICE, .offset = OFF(role),
      .def = "auto", .choices = "auto|supernode|peer", .metavar = "ROLE",
      .help = "overlay role: auto (with no bootstrap: the seed of its own "
              "overlay, a supernode; with bootstrap: a peer, promoted to "
              "supernode after an hour if reachable over UDP and TCP), "
              "supernode or peer" },
    { .name = "bootstrap", .type = BRG_OPT_STRING, .offset = OFF(bootstrap),
      .def = "", .check = check_bootstrap, .metavar = "KEY@HOST:PORT,...",
      .help = "supernodes to log in through: public key @ overlay address "
              "(GET /v1/overlay 'contact' of another bridge)" },
    { .name = "keepalive_s", .type = BRG_OPT_INT, .offset = OFF(keepalive_s),
      .def = "20", .min = 1, .max = 3600, .metavar = "SECONDS",
      .help = "keep-alive interval of overlay sessions, UDP and TCP (a "
              "silent supernode is dropped after max(75, 2.5 x this) s)" },
    { .name = "login_authority", .type = BRG_OPT_STRING,
      .offset = OFF(login_authority), .def = "", .check = check_pubkey,
      .metavar = "KEY",
      .help = "login authority's public key: as a supernode, require "
              "certificates; rooms are published with "
              "<state_dir>/room-certs/<room>.cert ('' none)" },
    { .name = "advertise_ip", .type = BRG_OPT_STRING,
      .offset = OFF(advertise_ip), .def = "", .check = check_ip_or_empty,
      .metavar = "ADDR",
      .help = "IP others reach this bridge at, in its overlay contact and "
              "room records ('': media_addr, or if that is a wildcard the "
              "first non-loopback IPv4)" },
};

enum { N_OPTIONS = sizeof(options) / sizeof(options[0]) };

/* Returns the table; see brg_config.h. */
const struct brg_option *brg_config_options(size_t *count)
{
    *count = N_OPTIONS;
    return options;
}

/* True when @a equals @b with '-' and '_' treated alike. */
static bool name_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '-' ? '_' : *a;
        char y = *b == '-' ? '_' : *b;

        if (x != y)
            return false;
    }
    return *a == *b;
}

/* Finds a row by name; see brg_config.h. */
const struct brg_option *brg_config_find(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (name_eq(options[i].name, name))
            return &options[i];
    return NULL;
}

/* Writes "--media-port" for @o into @buf (FLAG_MAX bytes). */
void brg__config_flag_name(const struct brg_option *o, char *buf)
{
    size_t i = 0;

    buf[i++] = '-';
    buf[i++] = '-';
    for (const char *p = o->name; *p && i < FLAG_MAX - 1; p++)
        buf[i++] = *p == '_' ? '-' : *p;
    buf[i] = '\0';
}

/* Writes "CHORUS_MEDIA_PORT" for @o into @buf (ENV_MAX bytes). */
void brg__config_env_name(const struct brg_option *o, char *buf)
{
    int n = snprintf(buf, ENV_MAX, "CHORUS_");

    for (const char *p = o->name; *p && n < ENV_MAX - 1; p++)
        buf[n++] = (char)toupper((unsigned char)*p);
    buf[n] = '\0';
}

/* ------------------------------------------------------ value types -- */

/* Parses a whole decimal integer. Returns false on junk or overflow. */
static bool parse_ll(const char *v, long long *out)
{
    char *end;

    if (!*v || isspace((unsigned char)*v))
        return false;
    errno = 0;
    *out = strtoll(v, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Parses a boolean word. Returns false when @v is none. */
bool brg__config_parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Parses "123", "64k", "2M", "1G" (powers of 1024). */
static bool parse_size(const char *v, unsigned long long *out)
{
    unsigned long long n, mul = 1;
    char *end;

    if (!isdigit((unsigned char)*v))
        return false;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno)
        return false;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mul = 1ull << 10; end++; break;
    case 'm': case 'M': mul = 1ull << 20; end++; break;
    case 'g': case 'G': mul = 1ull << 30; end++; break;
    default: return false;
    }
    if (*end != '\0' || n > UINT64_MAX / mul)
        return false;
    *out = n * mul;
    return true;
}

/* Index of @v in the '|'-separated @choices, or -1. */
static int parse_choice(const char *choices, const char *v)
{
    size_t vlen = strlen(v);
    int idx = 0;

    for (const char *p = choices; p; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);

        if (n == vlen && strncmp(p, v, n) == 0)
            return idx;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* True for an IPv4 or IPv6 literal. */
static bool is_addr(const char *v)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1;
}

/* Replaces the string at @slot with a copy of @v. */
static int set_string(char **slot, const char *v)
{
    char *copy = strdup(v);

    if (!copy)
        return -ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Checks and stores an integer-like value (INT, PORT) into an int. */
static int set_int(const struct brg_option *o, int *slot, const char *v,
                   char *why, size_t whylen)
{
    long long n, lo = o->min, hi = o->max;
    bool port = o->type == BRG_OPT_PORT;

    if (port) {
        lo = 1;
        hi = 65535;
    }
    if (!parse_ll(v, &n) || n < lo || n > hi) {
        if (port)
            snprintf(why, whylen, "is not a port (1-65535)");
        else if (!parse_ll(v, &n))
            snprintf(why, whylen, "is not an integer");
        else
            snprintf(why, whylen, "is out of range (%lld-%lld)", lo, hi);
        return -EINVAL;
    }
    *slot = (int)n;
    return 0;
}

/* Parses @v by the type of @o and stores it in @cfg. Returns 0, -EINVAL
 * with a reason in @why ("is not a port (1-65535)"), or -ENOMEM. */
static int set_value(struct brg_config *cfg, const struct brg_option *o,
                     const char *v, char *why, size_t whylen)
{
    void *slot = (char *)cfg + o->offset;
    unsigned long long sz;
    int idx;

    switch (o->type) {
    case BRG_OPT_INT:
    case BRG_OPT_PORT:
        return set_int(o, slot, v, why, whylen);
    case BRG_OPT_BOOL:
        if (!brg__config_parse_bool(v, slot))
            goto out_bad_bool;
        return 0;
    case BRG_OPT_SIZE:
        if (!parse_size(v, &sz) || sz < (unsigned long long)o->min ||
            (o->max && sz > (unsigned long long)o->max)) {
            snprintf(why, whylen, "is not a size in range (%lld-%lld bytes, "
                     "suffix k, M or G allowed)", o->min, o->max);
            return -EINVAL;
        }
        *(uint64_t *)slot = sz;
        return 0;
    case BRG_OPT_CHOICE:
        idx = parse_choice(o->choices, v);
        if (idx < 0) {
            snprintf(why, whylen, "is not one of %s", o->choices);
            return -EINVAL;
        }
        *(int *)slot = idx;
        return 0;
    case BRG_OPT_ADDR:
        if (!is_addr(v)) {
            snprintf(why, whylen, "is not an IPv4 or IPv6 address");
            return -EINVAL;
        }
        return set_string(slot, v);
    case BRG_OPT_STRING:
        if (o->check && o->check(v, why, whylen) < 0)
            return -EINVAL;
        return set_string(slot, v);
    }
    snprintf(why, whylen, "has an unknown type");
    return -EINVAL;

out_bad_bool:
    snprintf(why, whylen, "is not a boolean (true/false, yes/no, on/off, 1/0)");
    return -EINVAL;
}

/* Sets one option by name; see brg_config.h. */
int brg_config_set(struct brg_config *cfg, const char *name,
                   const char *value, const char *origin,
                   char *err, size_t errlen)
{
    const struct brg_option *o = brg_config_find(name);
    char why[WHY_MAX];
    int rc;

    if (!o) {
        snprintf(err, errlen, "%s: unknown option '%s'",
                 origin ? origin : name, name);
        return -ENOENT;
    }
    rc = set_value(cfg, o, value, why, sizeof(why));
    if (rc == -EINVAL) {
        const char *shown = (o->flags & BRG_OPT_SECRET) ? "value"
                            : (*value ? value : "''");

        snprintf(err, errlen, "%s: %s %s", origin ? origin : o->name, shown,
                 why);
    } else if (rc == -ENOMEM) {
        snprintf(err, errlen, "out of memory");
    }
    return rc;
}

/* ------------------------------------------------- string validators -- */

/* Rejects "". */
static int check_nonempty(const char *v, char *why, size_t whylen)
{
    if (*v)
        return 0;
    snprintf(why, whylen, "must not be empty");
    return -EINVAL;
}

/* A user-given API token: "" (generate) or 16+ printable, blank-free
 * characters. */
static int check_token(const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= ' ' || v[i] > '~') {
            snprintf(why, whylen, "must be printable ASCII without blanks");
            return -EINVAL;
        }
    }
    if (n < BRG_API_TOKEN_MIN) {
        snprintf(why, whylen, "is too short (at least %d characters)",
                 BRG_API_TOKEN_MIN);
        return -EINVAL;
    }
    return 0;
}

/* A level name for log_level. */
static int check_level(const char *v, char *why, size_t whylen)
{
    if (brg_log_level_parse(v) >= 0)
        return 0;
    snprintf(why, whylen, "is not a log level (error, warn, info, debug, "
             "trace, off)");
    return -EINVAL;
}

/* A room name or "" for demo_room. */
static int check_room(const char *v, char *why, size_t whylen)
{
    if (!*v || brg_room_name_valid(v))
        return 0;
    snprintf(why, whylen, "is not a room name (1-%d characters of "
             "A-Z a-z 0-9 . _ ~ -)", BRG_ROOM_NAME_MAX);
    return -EINVAL;
}

/* True for a host name or IPv4 literal character. */
static bool host_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* Parses "host:port" or "[v6]:port"; see brg_config.h. */
int brg_config_parse_hostport(const char *s, size_t len, char *host,
                              size_t hostcap, uint16_t *port)
{
    const char *hs = s, *he, *colon;
    char digits[8];
    long long p;
    size_t plen;

    if (len && s[0] == '[') {
        hs = s + 1;
        he = memchr(hs, ']', len - 1);
        if (!he || he + 1 >= s + len || he[1] != ':')
            return -EINVAL;
        colon = he + 1;
        for (const char *c = hs; c < he; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
                return -EINVAL;
    } else {
        colon = memrchr(s, ':', len);
        if (!colon)
            return -EINVAL;
        he = colon;
        for (const char *c = hs; c < he; c++)
            if (!host_char(*c))
                return -EINVAL;
    }
    plen = len - (size_t)(colon + 1 - s);
    if (he == hs || (size_t)(he - hs) >= hostcap || plen == 0 ||
        plen >= sizeof(digits))
        return -EINVAL;
    memcpy(digits, colon + 1, plen);
    digits[plen] = '\0';
    if (!isdigit((unsigned char)digits[0]) || !parse_ll(digits, &p) ||
        p < 1 || p > 65535)
        return -EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* True when the @len bytes at @s are a public key as ovl_pk_from_text
 * takes it (43 base64url characters or 64 hex digits). */
static bool pubkey_ok(const char *s, size_t len)
{
    char text[KEY_TEXT_MAX + 1];
    uint8_t pk[OVL_ED_PK_LEN];

    if (len == 0 || len > KEY_TEXT_MAX)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    return ovl_pk_from_text(pk, text) == 0;
}

/* One bootstrap entry "KEY@HOST:PORT" of @n bytes at @e. Only the syntax:
 * host names are resolved when the overlay starts (ovl_uv_contact_parse),
 * not while the configuration is read. */
static bool bootstrap_entry_ok(const char *e, size_t n)
{
    const char *at = memchr(e, '@', n);
    char host[HOST_MAX];
    uint16_t port;

    if (!at || !pubkey_ok(e, (size_t)(at - e)))
        return false;
    return brg_config_parse_hostport(at + 1, n - (size_t)(at + 1 - e), host,
                                     sizeof(host), &port) == 0;
}

/* A comma-separated KEY@HOST:PORT list, "" allowed. Blanks around entries
 * are tolerated. */
static int check_bootstrap(const char *v, char *why, size_t whylen)
{
    while (*v) {
        const char *comma = strchr(v, ',');
        size_t n = comma ? (size_t)(comma - v) : strlen(v);
        const char *e = v;

        while (n && isspace((unsigned char)*e)) {
            e++;
            n--;
        }
        while (n && isspace((unsigned char)e[n - 1]))
            n--;
        if (!bootstrap_entry_ok(e, n)) {
            snprintf(why, whylen, "is not a KEY@HOST:PORT list ('%.*s' is not "
                     "a public key @ host:port)", (int)n, e);
            return -EINVAL;
        }
        if (!comma)
            break;
        v = comma + 1;
    }
    return 0;
}

/* "" or an Ed25519 public key (login_authority). */
static int check_pubkey(const char *v, char *why, size_t whylen)
{
    if (!*v || pubkey_ok(v, strlen(v)))
        return 0;
    snprintf(why, whylen, "is not a public key (43 base64url characters or "
             "64 hex digits)");
    return -EINVAL;
}

/* "" or an IPv4/IPv6 literal (advertise_ip). */
static int check_ip_or_empty(const char *v, char *why, size_t whylen)
{
    if (!*v || is_addr(v))
        return 0;
    snprintf(why, whylen, "is not an IPv4 or IPv6 address");
    return -EINVAL;
}

/* ------------------------------------------------------- life cycle -- */

/* Sets every default; see brg_config.h. */
int brg_config_init(struct brg_config *cfg)
{
    char why[WHY_MAX];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_OPTIONS; i++) {
        int rc = set_value(cfg, &options[i], options[i].def, why, sizeof(why));

        if (rc < 0) {
            brg_config_free(cfg);
            return rc == -EINVAL ? -EINVAL : rc;  /* -EINVAL: table bug */
        }
    }
    return 0;
}

/* Frees the strings; see brg_config.h. */
void brg_config_free(struct brg_config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct brg_option *o = &options[i];

        if (o->type == BRG_OPT_STRING || o->type == BRG_OPT_ADDR) {
            /* The offset comes from offsetof() of a char * field, so the
             * slot is aligned; memcpy keeps clang's -Wcast-align quiet. */
            char *p, *none = NULL;

            memcpy(&p, (char *)cfg + o->offset, sizeof(p));
            free(p);
            memcpy((char *)cfg + o->offset, &none, sizeof(none));
        }
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* Returns the version line; see brg_config.h. */
const char *brg_config_version(void)
{
    return "chorus-bridge " CHORUS_VERSION;
}

/* ------------------------------------------------------- config file -- */

/* Strips blanks at both ends of @s in place; returns the new start. */
static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Turns the raw value text @v into the value: a double-quoted value is
 * taken as is (without quotes); otherwise a '#' after a blank starts a
 * comment. Returns NULL for an unterminated quote. */
static char *file_value(char *v)
{
    v = trim(v);
    if (*v == '"') {
        char *q = strchr(v + 1, '"');

        if (!q || *trim(q + 1) != '\0')
            return NULL;
        *q = '\0';
        return v + 1;
    }
    for (char *p = v; *p; p++) {
        if (*p == '#' && (p == v || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            break;
        }
    }
    return trim(v);
}

/* Applies one line @line (number @no) of the file @path. */
static int file_line(struct brg_config *cfg, const char *path, unsigned no,
                     char *line, char *err, size_t errlen)
{
    char origin[512];
    char *key, *val, *eq;
    const struct brg_option *o;

    key = trim(line);
    if (*key == '\0' || *key == '#')
        return 0;
    eq = strchr(key, '=');
    if (!eq) {
        snprintf(err, errlen, "%s:%u: expected 'key = value'", path, no);
        return -EINVAL;
    }
    *eq = '\0';
    key = trim(key);
    val = file_value(eq + 1);
    o = brg_config_find(key);
    if (!o) {
        snprintf(err, errlen, "%s:%u: unknown option '%s'", path, no, key);
        return -EINVAL;
    }
    if (!val) {
        snprintf(err, errlen, "%s:%u: %s: unterminated quote", path, no, key);
        return -EINVAL;
    }
    if (strcmp(o->name, "config") == 0) {
        snprintf(err, errlen, "%s:%u: 'config' cannot be set in a config "
                 "file", path, no);
        return -EINVAL;
    }
    snprintf(origin, sizeof(origin), "%s:%u: %s", path, no, o->name);
    return brg_config_set(cfg, o->name, val, origin, err, errlen);
}

/* Reads a config file; see brg_config.h. */
int brg_config_read_file(struct brg_config *cfg, const char *path,
                         char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    unsigned no = 0;
    ssize_t n;
    int rc = 0;

    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        no++;
        if (memchr(line, '\0', (size_t)n)) {
            snprintf(err, errlen, "%s:%u: NUL byte in line", path, no);
            rc = -EINVAL;
            goto out_close;
        }
        rc = file_line(cfg, path, no, line, err, errlen);
        if (rc < 0)
            goto out_close;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -EIO;
    }

out_close:
    free(line);
    fclose(f);
    return rc;
}
