/*
 * cli_overlay.c: chorus-client's overlay mode (cli_overlay.h).
 *
 * One overlay node on the libuv driver (ovl_uvnode.h), plus what a user or
 * a test harness needs around it: options, a key file, a certificate, the
 * one-shot requests of the command line, commands on stdin, and one report
 * line per event on stdout (cli_ovl_report.c).
 *
 * When it ends
 * ------------
 * Nothing ends before the first login (or --login-timeout, exit 3). Then:
 *  - SIGINT/SIGTERM, or "quit"/EOF on stdin (--stdin) once every lookup
 *    asked so far is answered, end it;
 *  - with --stay S, it ends S seconds after the one-shot requests (lookups,
 *    first buddy states, the NAT type) are answered;
 *  - without --stay and --stdin it ends as soon as they are answered, or,
 *    with no one-shot request at all, right after login for a peer (a login
 *    check) and never for a supernode or auto node (it serves).
 * Ending is always a graceful logout when logged in (ovl_uvnode_close).
 *
 * Thread: one (the libuv loop).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cli_overlay.h"
#include "cli_ovl_report.h"
#include "ovl_record.h"

enum {
    OVC_EXIT_START = 1,           /* sockets could not be set up */
    OVC_KEEPALIVE_S = 20,
    OVC_LOGIN_TIMEOUT_S = 20,
    OVC_REQS_MAX = 4096,          /* lookups waiting for login or answers */
    OVC_LINE_MAX = 512,           /* longest stdin command */
    OVC_IN_BUF = 4096,
};

#define OVC_NS_PER_S 1000000000.0

struct ovc_opts {
    const char *handle;
    const char *cert_path;
    const char *authority;
    const char *identity;
    const char *bind_ip;
    const char *advertise_ip;
    const char *hostcache;
    enum ovl_role_mode role;
    uint16_t port;
    double keepalive_s;
    double dead_after_s;          /* 0: the core's default */
    double rpc_timeout_ms;        /* 0: the core's default */
    double hostcache_refresh_s;   /* 0: the core's default */
    double stay_s;                /* < 0: not given */
    double login_timeout_s;
    bool nat;
    bool use_stdin;
    bool json;
};

/* A lookup asked for: waiting for login (!sent) or for its answer. */
struct ovc_req {
    uint8_t rtype;                /* OVL_R_PRESENCE or OVL_R_ROOM */
    bool oneshot;                 /* from the command line: sets exit 4 */
    bool sent;                    /* asked; token is valid */
    uint32_t token;
    char name[OVL_NAME_MAX + 1];
};

struct ovc_buddy {
    const char *name;             /* argv */
    bool resolved;                /* its first state was reported */
};

struct ovc {
    struct ovc_opts o;
    struct cli_ovl_report rep;
    uv_loop_t *loop;
    struct ovl_uvnode *u;         /* NULL before start and once closed */
    struct ovl_uvnode_config cfg; /* the node's setup (identity: ours) */
    struct ovl_identity id;
    uint8_t cert[OVL_CERT_LEN];
    uint8_t auth[OVL_ED_PK_LEN];
    bool have_cert, have_auth;
    struct ovl_contact *boot;
    size_t nboot;
    struct ovc_req *reqs;         /* in the order asked */
    size_t nreqs, reqs_cap;
    struct ovc_buddy *buddies;    /* from the command line */
    size_t nbuddies, buddies_left;
    bool has_oneshot;             /* --lookup, --lookup-room, --buddy, --nat */
    uv_signal_t sigint, sigterm;
    uv_timer_t login_timer, stay_timer;
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tty_t tty;
        uv_pipe_t pipe;
    } in;                         /* stdin as a stream (tty, pipe) */
    bool in_open;                 /* in is initialised and not closed */
    bool in_is_file;              /* stdin is a file: read with uv_fs_read */
    bool in_started;              /* reading began (at the first login) */
    uv_fs_t in_req;
    char in_buf[OVC_IN_BUF];
    char line[OVC_LINE_MAX];
    size_t line_len;
    bool line_too_long;
    bool in_eof;                  /* EOF or "quit" seen */
    bool handles_up;              /* signals and timers initialised */
    bool logged_in_once, logged_out, nat_done, stay_started;
    bool lookup_failed;           /* a one-shot lookup answered "failed" */
    bool closing;
    int exit_code;
    char last_reason[128];        /* last LOGIN_FAILED reason */
};

static void check_done(struct ovc *c);
static void stdin_begin(struct ovc *c);

static uint64_t secs_to_ns(double s)
{
    return (uint64_t)(s * OVC_NS_PER_S);
}

static uint64_t now_of(const struct ovc *c)
{
    return ovl_uvnode_now(c->u);
}

/* ---- Options ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: chorus-client overlay --bootstrap KEY@HOST:PORT[,...] [options]\n"
            "Runs an overlay node: logs in to a supernode (or serves as one), shows the\n"
            "NAT type, looks up handles and rooms, and follows buddies' presence.\n\n"
            "  --bootstrap LIST       supernodes to start from, KEY@HOST:PORT separated by\n"
            "                         commas (KEY: 43 base64url characters or 64 hex digits);\n"
            "                         may be repeated. A supernode without it is a seed.\n"
            "  --handle NAME          log in with this handle (published as presence)\n"
            "  --cert FILE            the handle's certificate (chorus-authority sign)\n"
            "  --authority KEY        the login authority's key (supernodes then require\n"
            "                         certificates)\n"
            "  --identity FILE        Ed25519 key file, created (0600) if missing\n"
            "                         (default: a fresh identity per run)\n"
            "  --role peer|supernode|auto  (default peer; supernode and auto also listen\n"
            "                         on TCP, on the same port)\n"
            "  --port N               UDP and TCP port (default 0: an ephemeral one)\n"
            "  --bind IP              local address (default 0.0.0.0)\n"
            "  --advertise-ip IP      the address others reach us at (default: the first\n"
            "                         non-loopback IPv4, else 127.0.0.1)\n"
            "  --hostcache FILE       keep the supernode host cache in FILE\n"
            "  --keepalive-s N        keepalive on signalling sessions (default 20)\n"
            "  --dead-after-s N       silence that loses a supernode (default: the core's 75)\n"
            "  --rpc-timeout-ms N     overlay request time-out (default: the core's 1000)\n"
            "  --hostcache-refresh-s N  how often a peer asks its supernode for more\n"
            "                         supernodes (default: the core's 600; the first time\n"
            "                         after an eighth of it)\n"
            "  --lookup NAME          look up a handle after login (repeatable)\n"
            "  --lookup-room NAME     look up a room after login (repeatable)\n"
            "  --buddy NAME           add a buddy; print its presence and every change\n"
            "                         (peers only)\n"
            "  --nat                  classify the NAT once logged in and print the type\n"
            "                         (peers only)\n"
            "  --stdin                read commands, one per line: lookup NAME, room NAME,\n"
            "                         buddy NAME, status, logout, quit\n"
            "  --stay SECONDS         stay online this long after the one-shot requests are\n"
            "                         answered (default: exit then; with --stdin: stay until\n"
            "                         EOF or quit; a supernode without requests serves until\n"
            "                         SIGINT/SIGTERM)\n"
            "  --login-timeout SECONDS  give up (exit 3) if not logged in by then (default 20)\n"
            "  --json                 one JSON object per line on stdout\n"
            "  --help                 this text\n\n"
            "Events (--json; \"event\" names the kind): ready {contact, port, tcp_port},\n"
            "logged_in {supernode, role, node_id}, login_failed {reason},\n"
            "supernode_lost {supernode}, role {role}, nat {type, mapping, filtering,\n"
            "reflexive}, lookup {kind, name, state, owner, addrs, tcp_port, supernode,\n"
            "last_seen, rounds, messages, ms, us}, buddy {name, state, last_seen, addrs},\n"
            "published {rtype, replicas, status}, status {role, logged_in, supernode, nat,\n"
            "hostcache, attached, records, ...}, logged_out.\n"
            "States: online, offline, unknown, failed.\n\n"
            "Exit status: 0 ok (and after SIGINT/SIGTERM: graceful logout), 1 could not\n"
            "open the sockets, 2 usage, 3 not logged in within --login-timeout, 4 a\n"
            "one-shot lookup answered failed.\n");
}

/* Parses @text as a number in [min, max] for option --@flag. */
static int parse_num(const char *flag, const char *text, double min, double max,
                     bool integer, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (end == text || *end || errno || !(v >= min && v <= max) ||
        (integer && v != (double)(int64_t)v)) {
        fprintf(stderr, "chorus-client: --%s: %s is not %s in [%g, %g]\n", flag, text,
                integer ? "an integer" : "a number", min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static void bootstrap_bad(const char *entry, void *data)
{
    fprintf(stderr, "chorus-client: --bootstrap: %s is not KEY@HOST:PORT (or does not resolve)\n",
            entry);
    *(bool *)data = true;
}

/* Appends the comma-separated contacts of @list to the bootstrap list; any
 * bad entry is a usage error. */
static int add_bootstrap(struct ovc *c, const char *list)
{
    struct ovl_contact *more, *grown;
    size_t n;
    bool bad = false;

    if (ovl_uv_contacts_parse(list, &more, &n, bootstrap_bad, &bad) != 0)
        return -1;
    if (bad) {
        free(more);
        return -1;
    }
    if (n == 0)
        return 0;
    grown = realloc(c->boot, (c->nboot + n) * sizeof(*c->boot));
    if (grown == NULL) {
        free(more);
        return -1;
    }
    memcpy(grown + c->nboot, more, n * sizeof(*more));
    c->boot = grown;
    c->nboot += n;
    free(more);
    return 0;
}

/* Queues a lookup of @name; the caller sends the queue (send_queued). */
static struct ovc_req *req_add(struct ovc *c, uint8_t rtype, const char *name, bool oneshot)
{
    struct ovc_req *r;

    if (c->nreqs == OVC_REQS_MAX || strlen(name) > OVL_NAME_MAX)
        return NULL;
    if (c->nreqs == c->reqs_cap) {
        size_t cap = c->reqs_cap ? 2 * c->reqs_cap : 16;
        struct ovc_req *grown = realloc(c->reqs, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        c->reqs = grown;
        c->reqs_cap = cap;
    }
    r = &c->reqs[c->nreqs++];
    memset(r, 0, sizeof(*r));
    r->rtype = rtype;
    r->oneshot = oneshot;
    strcpy(r->name, name);
    return r;
}

static void req_remove(struct ovc *c, size_t i)
{
    memmove(&c->reqs[i], &c->reqs[i + 1], (c->nreqs - i - 1) * sizeof(c->reqs[0]));
    c->nreqs--;
}

static bool name_ok(const char *flag, const char *name)
{
    if (ovl_name_valid(name, strlen(name)))
        return true;
    fprintf(stderr, "chorus-client: --%s: '%s' is not a name (1 to %d printable ASCII characters, no spaces)\n",
            flag, name, OVL_NAME_MAX);
    return false;
}

static int add_buddy(struct ovc *c, const char *name)
{
    for (size_t i = 0; i < c->nbuddies; i++)
        if (strcmp(c->buddies[i].name, name) == 0)
            return 0;
    c->buddies[c->nbuddies].name = name;
    c->nbuddies++;
    c->buddies_left++;
    return 0;
}

static int parse_role(struct ovc_opts *o, const char *text)
{
    if (strcmp(text, "peer") == 0)
        o->role = OVL_ROLE_MODE_PEER;
    else if (strcmp(text, "supernode") == 0)
        o->role = OVL_ROLE_MODE_SUPERNODE;
    else if (strcmp(text, "auto") == 0)
        o->role = OVL_ROLE_MODE_AUTO;
    else {
        fprintf(stderr, "chorus-client: --role: %s is not peer, supernode or auto\n", text);
        return -1;
    }
    return 0;
}

enum {
    O_BOOTSTRAP = 256, O_HANDLE, O_CERT, O_AUTHORITY, O_IDENTITY, O_ROLE, O_PORT, O_BIND,
    O_ADVERTISE, O_HOSTCACHE, O_KEEPALIVE, O_DEAD_AFTER, O_RPC_TIMEOUT, O_HC_REFRESH, O_LOOKUP,
    O_LOOKUP_ROOM, O_BUDDY, O_NAT, O_STDIN, O_STAY, O_LOGIN_TIMEOUT, O_JSON, O_HELP,
};

static const struct option long_opts[] = {
    {"bootstrap", 1, 0, O_BOOTSTRAP}, {"handle", 1, 0, O_HANDLE},
    {"cert", 1, 0, O_CERT}, {"authority", 1, 0, O_AUTHORITY},
    {"identity", 1, 0, O_IDENTITY}, {"role", 1, 0, O_ROLE},
    {"port", 1, 0, O_PORT}, {"bind", 1, 0, O_BIND},
    {"advertise-ip", 1, 0, O_ADVERTISE}, {"hostcache", 1, 0, O_HOSTCACHE},
    {"keepalive-s", 1, 0, O_KEEPALIVE}, {"dead-after-s", 1, 0, O_DEAD_AFTER},
    {"rpc-timeout-ms", 1, 0, O_RPC_TIMEOUT}, {"hostcache-refresh-s", 1, 0, O_HC_REFRESH},
    {"lookup", 1, 0, O_LOOKUP},
    {"lookup-room", 1, 0, O_LOOKUP_ROOM}, {"buddy", 1, 0, O_BUDDY},
    {"nat", 0, 0, O_NAT}, {"stdin", 0, 0, O_STDIN},
    {"stay", 1, 0, O_STAY}, {"login-timeout", 1, 0, O_LOGIN_TIMEOUT},
    {"json", 0, 0, O_JSON}, {"help", 0, 0, O_HELP},
    {0, 0, 0, 0},
};

/* One option; returns 0, -1 (usage error, said why) or 1 (--help). */
static int parse_one(struct ovc *c, int ch, const char *arg)
{
    struct ovc_opts *o = &c->o;
    double v;

    switch (ch) {
    case O_BOOTSTRAP: return add_bootstrap(c, arg);
    case O_HANDLE: o->handle = arg; return name_ok("handle", arg) ? 0 : -1;
    case O_CERT: o->cert_path = arg; return 0;
    case O_AUTHORITY: o->authority = arg; return 0;
    case O_IDENTITY: o->identity = arg; return 0;
    case O_ROLE: return parse_role(o, arg);
    case O_PORT:
        if (parse_num("port", arg, 0, 65535, true, &v))
            return -1;
        o->port = (uint16_t)v;
        return 0;
    case O_BIND: o->bind_ip = arg; return 0;
    case O_ADVERTISE: o->advertise_ip = arg; return 0;
    case O_HOSTCACHE: o->hostcache = arg; return 0;
    case O_KEEPALIVE: return parse_num("keepalive-s", arg, 1, 3600, false, &o->keepalive_s);
    case O_DEAD_AFTER: return parse_num("dead-after-s", arg, 1, 86400, false, &o->dead_after_s);
    case O_RPC_TIMEOUT:
        return parse_num("rpc-timeout-ms", arg, 10, 600000, false, &o->rpc_timeout_ms);
    case O_HC_REFRESH:
        return parse_num("hostcache-refresh-s", arg, 1, 86400, false, &o->hostcache_refresh_s);
    case O_LOOKUP:
    case O_LOOKUP_ROOM:
        if (!name_ok(ch == O_LOOKUP ? "lookup" : "lookup-room", arg))
            return -1;
        c->has_oneshot = true;
        return req_add(c, ch == O_LOOKUP ? OVL_R_PRESENCE : OVL_R_ROOM, arg, true) ? 0 : -1;
    case O_BUDDY:
        if (!name_ok("buddy", arg))
            return -1;
        c->has_oneshot = true;
        return add_buddy(c, arg);
    case O_NAT: o->nat = true; c->has_oneshot = true; return 0;
    case O_STDIN: o->use_stdin = true; return 0;
    case O_STAY: return parse_num("stay", arg, 0, 1e9, false, &o->stay_s);
    case O_LOGIN_TIMEOUT:
        return parse_num("login-timeout", arg, 0.1, 1e6, false, &o->login_timeout_s);
    case O_JSON: o->json = true; return 0;
    case O_HELP: return 1;
    default: return -1;
    }
}

/* Checks what single options cannot: the combinations. */
static int check_opts(const struct ovc *c)
{
    if (c->nboot == 0 && c->o.role != OVL_ROLE_MODE_SUPERNODE &&
        (c->o.hostcache == NULL || access(c->o.hostcache, R_OK) != 0)) {
        fprintf(stderr, "chorus-client: a %s needs --bootstrap (or a --hostcache file to start from); only a supernode can be a seed\n",
                c->o.role == OVL_ROLE_MODE_AUTO ? "node with --role auto" : "peer");
        return -1;
    }
    if (c->nbuddies && c->o.role == OVL_ROLE_MODE_SUPERNODE) {
        fprintf(stderr, "chorus-client: --buddy: only peers follow buddies (a supernode looks them up instead: --lookup)\n");
        return -1;
    }
    if (c->o.nat && c->o.role == OVL_ROLE_MODE_SUPERNODE) {
        fprintf(stderr, "chorus-client: --nat: only peers classify their NAT (a supernode must be reachable, and answers STUN itself)\n");
        return -1;
    }
    if (c->o.cert_path && c->o.handle == NULL) {
        fprintf(stderr, "chorus-client: --cert needs --handle\n");
        return -1;
    }
    return 0;
}

/* Returns 0, -1 (usage error) or 1 (--help printed). */
static int parse(struct ovc *c, int argc, char **argv)
{
    int ch, ret;

    c->o.role = OVL_ROLE_MODE_PEER;
    c->o.keepalive_s = OVC_KEEPALIVE_S;
    c->o.login_timeout_s = OVC_LOGIN_TIMEOUT_S;
    c->o.stay_s = -1;
    c->buddies = calloc((size_t)argc + 1, sizeof(*c->buddies));
    if (c->buddies == NULL)
        return -1;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        ret = parse_one(c, ch, optarg);
        if (ret == 1) {
            usage(stdout);
            return 1;
        }
        if (ret)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "chorus-client: overlay: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return check_opts(c);
}

/* ---- Keys ------------------------------------------------------------------------------- */

/* Checks the certificate now, so that a wrong file is a clear usage error
 * rather than a login refused by every supernode. */
static int check_cert(struct ovc *c)
{
    struct ovl_cert cc;
    enum ovl_rerr why = OVL_RERR_NONE;

    if (ovl_cert_verify(&cc, c->cert, OVL_CERT_LEN, c->have_auth ? c->auth : NULL,
                        (uint64_t)time(NULL), &why) != 0) {
        fprintf(stderr, "chorus-client: --cert %s: refused (%s)\n", c->o.cert_path,
                ovl_rerr_name(why));
        return -1;
    }
    if (!ovl_cert_matches(&cc, OVL_CERT_HANDLE, c->o.handle, strlen(c->o.handle), c->id.ed_pk)) {
        fprintf(stderr, "chorus-client: --cert %s: not a certificate of handle %s for this identity (it is for '%s'%s)\n",
                c->o.cert_path, c->o.handle, cc.name,
                c->o.identity ? "" : "; without --identity every run has a new key");
        return -1;
    }
    return 0;
}

static int load_keys(struct ovc *c)
{
    char err[256] = "cannot generate an identity";
    int rc;

    if (c->o.identity)
        rc = ovl_identity_load_or_create(&c->id, c->o.identity, NULL, NULL, err, sizeof(err));
    else
        rc = ovl_identity_generate(&c->id, NULL);
    if (rc) {
        fprintf(stderr, "chorus-client: %s%s%s\n", c->o.identity ? c->o.identity : "",
                c->o.identity ? ": " : "", err);
        return -1;
    }
    if (c->o.authority) {
        if (ovl_pk_from_text(c->auth, c->o.authority) != 0) {
            fprintf(stderr, "chorus-client: --authority: not a key (43 base64url characters or 64 hex digits)\n");
            return -1;
        }
        c->have_auth = true;
    }
    if (c->o.cert_path) {
        char why[512];

        if (ovl_cert_read_file(c->o.cert_path, c->cert, why, sizeof(why)) != 0) {
            fprintf(stderr, "chorus-client: --cert %s\n", why);
            return -1;
        }
        c->have_cert = true;
        return check_cert(c);
    }
    return 0;
}

/* ---- Requests ---------------------------------------------------------------------------- */

/* Answers a request the node never took (bad name, logged out ...). */
static void req_fail(struct ovc *c, size_t i, int status)
{
    struct ovl_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.kind = OVL_NEV_LOOKUP;
    ev.rtype = c->reqs[i].rtype;
    ev.state = OVL_PS_FAILED;
    ev.status = status;
    ev.started = now_of(c);
    strcpy(ev.name, c->reqs[i].name);
    if (c->reqs[i].oneshot)
        c->lookup_failed = true;
    req_remove(c, i);
    cli_ovl_report_lookup(&c->rep, &ev, ev.started);
}

/* Asks the node for every queued lookup it can take now. */
static void send_queued(struct ovc *c)
{
    struct ovl_node *n = ovl_uvnode_node(c->u);
    bool asked = false;
    int rc;

    if (c->closing || !ovl_node_logged_in(n))
        return;
    for (size_t i = 0; i < c->nreqs;) {
        struct ovc_req *r = &c->reqs[i];

        if (r->sent) {
            i++;
            continue;
        }
        rc = ovl_node_lookup(n, r->rtype, r->name, now_of(c), &r->token);
        if (rc == -ENOTCONN)
            break;
        if (rc) {
            req_fail(c, i, rc);
            continue;
        }
        r->sent = true;
        asked = true;
        i++;
    }
    if (asked)
        ovl_uvnode_flush(c->u);
}

/* A lookup from stdin. */
static void ask(struct ovc *c, uint8_t rtype, const char *name)
{
    if (req_add(c, rtype, name, false) == NULL) {
        fprintf(stderr, "chorus-client: stdin: too many lookups outstanding; '%s' dropped\n", name);
        return;
    }
    if (!ovl_name_valid(name, strlen(name)))
        req_fail(c, c->nreqs - 1, -EINVAL);
    else if (c->logged_out)
        req_fail(c, c->nreqs - 1, -ENOTCONN);
    else
        send_queued(c);
}

/* ---- Node events --------------------------------------------------------------------------- */

static void on_lookup(struct ovc *c, const struct ovl_event *ev)
{
    for (size_t i = 0; i < c->nreqs; i++) {
        if (!c->reqs[i].sent || c->reqs[i].token != ev->token)
            continue;
        if (c->reqs[i].oneshot && ev->state == OVL_PS_FAILED)
            c->lookup_failed = true;
        req_remove(c, i);
        break;
    }
    cli_ovl_report_lookup(&c->rep, ev, now_of(c));
}

static void on_buddy(struct ovc *c, const struct ovl_event *ev)
{
    for (size_t i = 0; i < c->nbuddies; i++) {
        if (!c->buddies[i].resolved && strcmp(c->buddies[i].name, ev->name) == 0) {
            c->buddies[i].resolved = true;
            c->buddies_left--;
        }
    }
    cli_ovl_report_buddy(&c->rep, ev);
}

static void on_logged_in(struct ovc *c, const struct ovl_event *ev)
{
    cli_ovl_report_logged_in(&c->rep, ev, ovl_node_role(ovl_uvnode_node(c->u)), c->id.node_id);
    if (!c->logged_in_once) {
        c->logged_in_once = true;
        uv_timer_stop(&c->login_timer);
    }
    send_queued(c);
    stdin_begin(c);
}

static void on_role(struct ovc *c, enum ovl_role role)
{
    cli_ovl_report_role(&c->rep, role);
    /* Only peers follow buddies: states that have not come will not. */
    if (role == OVL_ROLE_SUPERNODE && c->buddies_left) {
        fprintf(stderr, "chorus-client: promoted to supernode: buddies are no longer followed\n");
        for (size_t i = 0; i < c->nbuddies; i++)
            c->buddies[i].resolved = true;
        c->buddies_left = 0;
    }
}

static void on_logged_out(struct ovc *c)
{
    c->logged_out = true;
    cli_ovl_report_simple(&c->rep, "logged_out", "logged out");
    /* Nothing will send what is still queued. */
    for (size_t i = 0; i < c->nreqs;) {
        if (c->reqs[i].sent)
            i++;
        else
            req_fail(c, i, -ENOTCONN);
    }
}

static void on_event(struct ovl_uvnode *u, const struct ovl_event *ev, void *data)
{
    struct ovc *c = data;

    /* Events may come while ovl_uvnode_new is still running. */
    c->u = u;
    cli_ovl_report_ready(&c->rep, u);
    switch (ev->kind) {
    case OVL_NEV_LOGGED_IN: on_logged_in(c, ev); break;
    case OVL_NEV_LOGIN_FAILED:
        snprintf(c->last_reason, sizeof(c->last_reason), "%s", ev->reason);
        cli_ovl_report_login_failed(&c->rep, ev->reason);
        break;
    case OVL_NEV_SUPERNODE_LOST: cli_ovl_report_lost(&c->rep, &ev->supernode); break;
    case OVL_NEV_ROLE_CHANGED: on_role(c, ev->role); break;
    case OVL_NEV_LOOKUP: on_lookup(c, ev); break;
    case OVL_NEV_PUBLISHED: cli_ovl_report_published(&c->rep, ev); break;
    case OVL_NEV_BUDDY: on_buddy(c, ev); break;
    case OVL_NEV_LOGGED_OUT: on_logged_out(c); break;
    default: break;
    }
    check_done(c);
}

static void on_nat(struct ovl_uvnode *u, const struct ovl_nat_result *r, void *data)
{
    struct ovc *c = data;

    c->u = u;
    cli_ovl_report_ready(&c->rep, u);
    cli_ovl_report_nat(&c->rep, r);
    c->nat_done = true;
    check_done(c);
}

/* ---- Ending -------------------------------------------------------------------------------- */

static void on_node_closed(void *data)
{
    struct ovc *c = data;

    c->u = NULL;
}

static void stdin_close(struct ovc *c)
{
    if (!c->in_open)
        return;
    c->in_open = false;
    uv_close(&c->in.h, NULL);
}

/* Starts ending: a graceful logout if logged in, then every handle closes
 * and uv_run returns. Later calls are ignored. */
static void finish(struct ovc *c, int code)
{
    if (c->closing)
        return;
    c->closing = true;
    c->exit_code = code;
    stdin_close(c);
    if (c->handles_up) {
        uv_close((uv_handle_t *)&c->login_timer, NULL);
        uv_close((uv_handle_t *)&c->stay_timer, NULL);
        /* A second signal now takes the default action: kill at once. */
        uv_close((uv_handle_t *)&c->sigint, NULL);
        uv_close((uv_handle_t *)&c->sigterm, NULL);
    }
    if (c->u)
        ovl_uvnode_close(c->u, c->logged_in_once && !c->logged_out, on_node_closed, c);
}

static int normal_exit(const struct ovc *c)
{
    return c->lookup_failed ? CLI_OVL_EXIT_LOOKUP : CLI_OVL_EXIT_OK;
}

static void on_stay_over(uv_timer_t *t)
{
    finish(t->data, normal_exit(t->data));
}

/* Ends the run once nothing is left to wait for (see the file comment). */
static void check_done(struct ovc *c)
{
    struct ovc_opts *o = &c->o;

    if (c->closing || (!c->logged_in_once && !c->logged_out))
        return;
    if (c->nreqs || c->buddies_left || (o->nat && !c->nat_done))
        return;
    if (o->use_stdin && c->in_eof) {
        finish(c, normal_exit(c));
        return;
    }
    if (o->stay_s >= 0) {
        if (!c->stay_started) {
            c->stay_started = true;
            uv_timer_start(&c->stay_timer, on_stay_over, (uint64_t)(o->stay_s * 1000), 0);
        }
        return;
    }
    if (o->use_stdin || (!c->has_oneshot && o->role != OVL_ROLE_MODE_PEER))
        return;
    finish(c, normal_exit(c));
}

static void on_login_timeout(uv_timer_t *t)
{
    struct ovc *c = t->data;
    char why[256];

    if (c->logged_in_once || c->logged_out)
        return;
    snprintf(why, sizeof(why), "not logged in within %g s%s%s%s", c->o.login_timeout_s,
             c->last_reason[0] ? " (last attempt: " : "", c->last_reason,
             c->last_reason[0] ? ")" : "");
    if (c->o.json)
        cli_ovl_report_login_failed(&c->rep, why);
    fprintf(stderr, "chorus-client: %s\n", why);
    finish(c, CLI_OVL_EXIT_LOGIN);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    finish(s->data, CLI_OVL_EXIT_OK);
}

/* ---- Commands on stdin ------------------------------------------------------------------------ */

static void run_command(struct ovc *c, char *line)
{
    char *save = NULL, *verb, *arg, *extra;
    struct ovl_node *n = ovl_uvnode_node(c->u);
    int rc;

    verb = strtok_r(line, " \t\r", &save);
    if (verb == NULL || verb[0] == '#')
        return;
    arg = strtok_r(NULL, " \t\r", &save);
    extra = strtok_r(NULL, " \t\r", &save);
    if (strcmp(verb, "lookup") == 0 || strcmp(verb, "room") == 0 || strcmp(verb, "buddy") == 0) {
        if (arg == NULL || extra) {
            fprintf(stderr, "chorus-client: stdin: usage: %s NAME\n", verb);
            return;
        }
        if (verb[0] != 'b') {
            ask(c, verb[0] == 'l' ? OVL_R_PRESENCE : OVL_R_ROOM, arg);
            return;
        }
        if (ovl_node_role(n) == OVL_ROLE_SUPERNODE) {
            fprintf(stderr, "chorus-client: stdin: buddy: only peers follow buddies (use lookup)\n");
            return;
        }
        rc = ovl_node_buddy_add(n, arg, now_of(c));
        if (rc)
            fprintf(stderr, "chorus-client: stdin: buddy %s: %s\n", arg,
                    rc == -EEXIST ? "already a buddy" : strerror(-rc));
        ovl_uvnode_flush(c->u);
    } else if (strcmp(verb, "status") == 0) {
        cli_ovl_report_status(&c->rep, c->u);
    } else if (strcmp(verb, "logout") == 0) {
        rc = ovl_node_logout(n, now_of(c));
        if (rc)
            fprintf(stderr, "chorus-client: stdin: logout: %s\n",
                    rc == -EALREADY ? "already logged out" : strerror(-rc));
        ovl_uvnode_flush(c->u);
    } else if (strcmp(verb, "quit") == 0) {
        c->in_eof = true;
        stdin_close(c);
    } else {
        fprintf(stderr, "chorus-client: stdin: unknown command '%s' (lookup NAME, room NAME, buddy NAME, status, logout, quit)\n",
                verb);
    }
}

static void feed(struct ovc *c, const char *buf, size_t len)
{
    for (size_t i = 0; i < len && !c->closing && !c->in_eof; i++) {
        if (buf[i] != '\n') {
            if (c->line_len + 1 < sizeof(c->line))
                c->line[c->line_len++] = buf[i];
            else
                c->line_too_long = true;
            continue;
        }
        c->line[c->line_len] = '\0';
        if (c->line_too_long)
            fprintf(stderr, "chorus-client: stdin: line longer than %d bytes ignored\n",
                    OVC_LINE_MAX - 1);
        else
            run_command(c, c->line);
        c->line_len = 0;
        c->line_too_long = false;
    }
}

static void on_stdin_end(struct ovc *c)
{
    if (c->line_len && !c->closing && !c->in_eof) {
        c->line[c->line_len] = '\0';
        run_command(c, c->line);
    }
    c->line_len = 0;
    c->in_eof = true;
    stdin_close(c);
    check_done(c);
}

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct ovc *c = h->data;

    (void)hint;
    *buf = uv_buf_init(c->in_buf, sizeof(c->in_buf));
}

static void on_stdin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ovc *c = s->data;

    if (nread > 0) {
        feed(c, buf->base, (size_t)nread);
        check_done(c);
    } else if (nread < 0) {
        if (nread != UV_EOF)
            fprintf(stderr, "chorus-client: stdin: %s\n", uv_strerror((int)nread));
        on_stdin_end(c);
    }
}

static int stdin_file_read(struct ovc *c);

/* Stdin is a file (or /dev/null): read it through the thread pool. */
static void on_stdin_file(uv_fs_t *req)
{
    struct ovc *c = req->data;
    ssize_t n = req->result;

    uv_fs_req_cleanup(req);
    if (n > 0) {
        feed(c, c->in_buf, (size_t)n);
        if (!c->closing && !c->in_eof && stdin_file_read(c) == 0)
            return;
    }
    if (!c->closing)
        on_stdin_end(c);
}

static int stdin_file_read(struct ovc *c)
{
    uv_buf_t b = uv_buf_init(c->in_buf, sizeof(c->in_buf));

    c->in_req.data = c;
    return uv_fs_read(c->loop, &c->in_req, 0, &b, 1, -1, on_stdin_file);
}

/* Opens stdin as a stream (tty, pipe) or notes that it is a file; reading
 * starts at the first login (stdin_begin). */
static int stdin_open(struct ovc *c)
{
    uv_handle_type t = uv_guess_handle(0);
    int rc;

    if (t == UV_FILE) {
        c->in_is_file = true;
        return 0;
    }
    if (t == UV_TTY) {
        rc = uv_tty_init(c->loop, &c->in.tty, 0, 1);
    } else if (t == UV_NAMED_PIPE) {
        rc = uv_pipe_init(c->loop, &c->in.pipe, 0);
        if (rc == 0 && (rc = uv_pipe_open(&c->in.pipe, 0)) != 0)
            uv_close(&c->in.h, NULL);
    } else {
        rc = UV_EINVAL;
    }
    if (rc)
        return rc;
    c->in_open = true;
    c->in.h.data = c;
    return 0;
}

/* Starts reading commands. Only once logged in, so that a script's
 * commands run in order after the login rather than before it. */
static void stdin_begin(struct ovc *c)
{
    int rc;

    if (!c->o.use_stdin || c->in_started || c->closing)
        return;
    c->in_started = true;
    if (c->in_is_file)
        rc = stdin_file_read(c);
    else
        rc = uv_read_start(&c->in.s, in_alloc, on_stdin_read);
    if (rc) {
        fprintf(stderr, "chorus-client: stdin: %s\n", uv_strerror(rc));
        on_stdin_end(c);
    }
}

/* ---- Start ----------------------------------------------------------------------------------- */

static void fill_config(struct ovc *c)
{
    struct ovl_uvnode_config *cfg = &c->cfg;
    struct ovl_node_config *nc = &cfg->node;

    memset(cfg, 0, sizeof(*cfg));
    nc->identity = &c->id;
    nc->role_mode = c->o.role;
    nc->handle = c->o.handle;
    nc->cert = c->have_cert ? c->cert : NULL;
    nc->authority = c->have_auth ? c->auth : NULL;
    nc->bootstrap = c->boot;
    nc->nbootstrap = c->nboot;
    nc->timing.keepalive = secs_to_ns(c->o.keepalive_s);
    nc->timing.dead_after = secs_to_ns(c->o.dead_after_s);
    nc->timing.rpc_timeout = (uint64_t)(c->o.rpc_timeout_ms * 1e6);
    nc->timing.hostcache_refresh = secs_to_ns(c->o.hostcache_refresh_s);
    cfg->bind_ip = c->o.bind_ip;
    cfg->advertise_ip = c->o.advertise_ip;
    cfg->port = c->o.port;
    cfg->listen_tcp = c->o.role != OVL_ROLE_MODE_PEER;
    cfg->hostcache_path = c->o.hostcache;
    cfg->nat_discovery = c->o.nat;
    cfg->software = "chorus-client";
    cfg->on_event = on_event;
    cfg->on_nat = on_nat;
    cfg->data = c;
}

static void handles_init(struct ovc *c)
{
    uv_signal_init(c->loop, &c->sigint);
    uv_signal_init(c->loop, &c->sigterm);
    c->sigint.data = c->sigterm.data = c;
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    uv_timer_init(c->loop, &c->login_timer);
    uv_timer_init(c->loop, &c->stay_timer);
    c->login_timer.data = c->stay_timer.data = c;
    uv_timer_start(&c->login_timer, on_login_timeout,
                   (uint64_t)(c->o.login_timeout_s * 1000), 0);
    c->handles_up = true;
}

/* Adds the command line's buddies; a refusal means no state will come. */
static void add_buddies(struct ovc *c)
{
    struct ovl_node *n = ovl_uvnode_node(c->u);
    int rc;

    for (size_t i = 0; i < c->nbuddies && !c->closing; i++) {
        rc = ovl_node_buddy_add(n, c->buddies[i].name, now_of(c));
        if (rc == 0)
            continue;
        fprintf(stderr, "chorus-client: --buddy %s: %s\n", c->buddies[i].name,
                rc == -ENOSPC ? "too many buddies" : strerror(-rc));
        if (!c->buddies[i].resolved) {
            c->buddies[i].resolved = true;
            c->buddies_left--;
        }
    }
    ovl_uvnode_flush(c->u);
}

/* Opens the sockets and starts the node and the rest. A failure ends the
 * run (finish) with its exit status. */
static void start(struct ovc *c)
{
    struct ovl_uvnode *u = NULL;
    char err[256] = "";
    int rc;

    handles_init(c);
    /* Before the node: a seed supernode logs in inside ovl_uvnode_new. */
    if (c->o.use_stdin && (rc = stdin_open(c)) != 0) {
        fprintf(stderr, "chorus-client: --stdin: cannot read stdin: %s\n", uv_strerror(rc));
        finish(c, CLI_OVL_EXIT_USAGE);
        return;
    }
    fill_config(c);
    rc = ovl_uvnode_new(&u, c->loop, &c->cfg, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "chorus-client: cannot start the overlay node: %s\n",
                err[0] ? err : strerror(-rc));
        c->u = NULL;
        finish(c, OVC_EXIT_START);
        return;
    }
    c->u = u;
    if (c->closing)
        return; /* ended from an event inside ovl_uvnode_new */
    cli_ovl_report_ready(&c->rep, u);
    add_buddies(c);
    send_queued(c);
    check_done(c);
}

static void cleanup(struct ovc *c)
{
    ovl_identity_wipe(&c->id);
    sodium_memzero(c->cert, sizeof(c->cert));
    free(c->boot);
    free(c->reqs);
    free(c->buddies);
}

int cli_overlay_main(int argc, char **argv)
{
    static struct ovc c;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    rc = parse(&c, argc, argv);
    if (rc == 0 && sodium_init() < 0)
        rc = -1;
    if (rc == 0 && load_keys(&c) != 0)
        rc = -1;
    if (rc) {
        if (rc < 0)
            fprintf(stderr, "Try 'chorus-client overlay --help'.\n");
        cleanup(&c);
        return rc < 0 ? CLI_OVL_EXIT_USAGE : CLI_OVL_EXIT_OK;
    }
    c.loop = uv_default_loop();
    cli_ovl_report_init(&c.rep, c.o.json, NULL);
    start(&c);
    uv_run(c.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(c.loop) != 0)
        fprintf(stderr, "chorus-client: warning: handles left open at exit\n");
    cleanup(&c);
    return c.exit_code;
}
