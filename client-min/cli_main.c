/*
 * cli_main.c: chorus-client, the minimal client. Direct mode: joins a room
 * on a bridge by address over a secure leg (UDP, or TCP with --tcp), sends a
 * tone, a WAV file or silence, records what it hears to a WAV file, and
 * prints the leg's statistics at the end. Exits non-zero with a clear
 * message when it cannot join or hears nothing. `chorus-client overlay ...`
 * is the overlay mode instead (cli_overlay.h).
 *
 * Thread: one (the libuv loop).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "brg_config.h"
#include "brg_join.h"
#include "cli_media.h"
#include "cli_overlay.h"
#include "ovl_secure.h"
#include "ovl_stream.h"
#include "ovl_uv.h"

enum {
    TICK_MS = 5,               /* scheduler granularity */
    JOIN_TIMEOUT_MS = 10000,
    TCP_MAX_QUEUED = 64 * 1024, /* bytes waiting: beyond, media is dropped */
    EXIT_OK = 0,
    EXIT_USAGE = 2,
    EXIT_JOIN = 3,             /* could not join */
    EXIT_MEDIA = 4,            /* joined but heard nothing */
    EXIT_KICKED = 5,           /* the bridge ended the leg */
};

struct opts {
    const char *bridge;
    const char *room;
    const char *pin;
    const char *name;
    const char *bridge_key;
    const char *identity;
    bool tcp;
    double duration;
    bool json;
    bool expect_audio;
    struct cli_media_config media;
};

struct client {
    struct opts o;
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_timer_t timer;
    uv_signal_t sigint;
    struct sockaddr_storage bridge;
    struct ovl_identity id;
    struct ovl_endpoint ep;
    struct ovl_session s;
    bool have_key, session_up, joined, done, tcp_up;
    uint8_t bridge_pk[OVL_ED_PK_LEN];
    struct ovl_stream st;
    uint8_t stbuf[OVL_STREAM_MAX];
    struct cli_media *media;
    uint64_t start_ns, join_ns, next_send_ns, next_play_ns, end_ns;
    uint32_t leg_id;
    int exit_code;
    char why[256];
    uint64_t key_tries;
};

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static uint64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void finish(struct client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends one secure-session message to the bridge on the chosen transport. */
static int send_msg(struct client *c, const uint8_t *msg, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)msg, (unsigned)len);
    int rc;

    if (c->o.tcp)
        return c->tcp_up ? ovl_uv_write_framed((uv_stream_t *)&c->tcp, msg, len, TCP_MAX_QUEUED)
                         : -ENOTCONN;
    rc = uv_udp_try_send(&c->udp, &buf, 1, (const struct sockaddr *)&c->bridge);
    return rc < 0 ? rc : 0;
}

static void send_sealed(struct client *c, const uint8_t *plain, size_t len)
{
    uint8_t out[1600 + OVL_DATA_OVERHEAD];
    size_t n;

    if (ovl_session_seal(&c->s, plain, len, now_ns(), out, sizeof(out), &n) == 0)
        send_msg(c, out, n);
}

static size_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Starts the handshake once the bridge's key is known. */
static void start_join(struct client *c)
{
    struct brg_join_req req = {.rate = CLI_RATE};
    uint8_t app[BRG_JOIN_REQ_PAD], out[OVL_INIT_MAX];
    size_t n;
    int len;

    snprintf(req.room, sizeof(req.room), "%s", c->o.room);
    snprintf(req.pin, sizeof(req.pin), "%s", c->o.pin ? c->o.pin : "");
    snprintf(req.name, sizeof(req.name), "%s", c->o.name ? c->o.name : "");
    len = brg_join_req_encode(&req, app, sizeof(app));
    if (len < 0) {
        finish(c, EXIT_USAGE, "room, PIN or name too long");
        return;
    }
    if (ovl_session_init(&c->s, &c->ep, c->bridge_pk) != 0 ||
        ovl_session_connect(&c->s, (const uint8_t *)&c->bridge, addr_len(&c->bridge), c->o.tcp,
                            app, (size_t)len, wall_ns(), now_ns(), out, sizeof(out), &n) != 0) {
        finish(c, EXIT_JOIN, "cannot start the handshake");
        return;
    }
    c->session_up = true;
    send_msg(c, out, n);
}

static void request_key(struct client *c)
{
    uint8_t out[OVL_KEY_REQ_LEN];
    size_t n;

    if (ovl_endpoint_key_request(&c->ep, now_ns(), out, sizeof(out), &n) == 0) {
        c->key_tries++;
        send_msg(c, out, n);
    }
}

static void on_message(struct client *c, const uint8_t *buf, size_t len)
{
    static uint8_t out[65536 + OVL_INIT_MAX];
    struct ovl_datagram in = {.buf = buf, .len = len, .addr = (const uint8_t *)&c->bridge,
                              .addr_len = addr_len(&c->bridge), .stream = c->o.tcp};
    struct ovl_rx rx;
    struct brg_join_resp resp;

    if (ovl_wire_classify(buf, len) != OVL_CLASS_SECURE)
        return;
    if (ovl_endpoint_recv(&c->ep, &in, now_ns(), NULL, out, sizeof(out), &rx) != 0)
        return;
    switch (rx.kind) {
    case OVL_RX_KEY_REPLY:
        if (c->have_key)
            break;
        memcpy(c->bridge_pk, rx.peer.identity, OVL_ED_PK_LEN);
        c->have_key = true;
        {
            char text[OVL_PK_TEXT_LEN];
            ovl_pk_to_text(text, c->bridge_pk);
            fprintf(stderr, "chorus-client: bridge identity %s (first use; pin it with --bridge-key)\n",
                    text);
        }
        start_join(c);
        break;
    case OVL_RX_REPLY:
        send_msg(c, rx.reply, rx.reply_len);
        break;
    case OVL_RX_RESPONSE:
        if (brg_join_resp_decode(&resp, rx.data, rx.data_len) != 0) {
            finish(c, EXIT_JOIN, "the bridge sent a malformed answer");
            break;
        }
        if ((rx.events & OVL_EV_REJECTED) || !resp.ok) {
            finish(c, EXIT_JOIN, "the bridge refused to join room %s: %s", c->o.room,
                   resp.error[0] ? resp.error : "refused");
            break;
        }
        if (!c->joined) {
            c->joined = true;
            c->leg_id = resp.id;
            c->join_ns = now_ns();
            c->next_send_ns = c->next_play_ns = c->join_ns;
            c->end_ns = c->join_ns + (uint64_t)(c->o.duration * 1e9);
            fprintf(stderr, "chorus-client: joined room %s as participant %u (%u Hz, %u ms) over %s\n",
                    c->o.room, resp.id, resp.sample_rate, resp.frame_ms, c->o.tcp ? "tcp" : "udp");
        }
        break;
    case OVL_RX_DATA:
        if (rx.data_len > 0 && rx.data[0] == BRG_CTRL_BYE) {
            finish(c, EXIT_KICKED, "the bridge ended the leg: %.*s", (int)(rx.data_len - 1),
                   (const char *)rx.data + 1);
            break;
        }
        if (c->joined)
            cli_media_receive(c->media, rx.data, rx.data_len, now_ns());
        break;
    default:
        break;
    }
}

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags)
{
    struct client *c = h->data;

    (void)from;
    if (nread > 0 && !(flags & UV_UDP_PARTIAL))
        on_message(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void on_tcp_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct client *c = h->data;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t left = nread > 0 ? (size_t)nread : 0;

    if (nread < 0) {
        c->tcp_up = false;
        if (!c->done)
            finish(c, c->joined ? EXIT_KICKED : EXIT_JOIN, "the bridge closed the connection");
        return;
    }
    while (left > 0 && !c->done) {
        const uint8_t *msg;
        size_t used, mlen;
        int rc = ovl_stream_feed(&c->st, p, left, &used, &msg, &mlen);

        if (rc < 0) {
            finish(c, EXIT_JOIN, "malformed stream from the bridge");
            return;
        }
        p += used;
        left -= used;
        if (rc == 0)
            break;
        on_message(c, msg, mlen);
    }
}

static void begin(struct client *c)
{
    if (c->have_key)
        start_join(c);
    else
        request_key(c);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct client *c = req->data;

    if (status < 0) {
        finish(c, EXIT_JOIN, "cannot connect to %s over TCP: %s", c->o.bridge, uv_strerror(status));
        return;
    }
    c->tcp_up = true;
    uv_read_start((uv_stream_t *)&c->tcp, ovl_uv_alloc_slab, on_tcp_read);
    begin(c);
}

static void on_timer(uv_timer_t *t)
{
    struct client *c = t->data;
    uint64_t now = now_ns();
    uint8_t out[OVL_INIT_MAX + 64], pkt[1600];
    uint32_t ev = 0;
    size_t n = 0;

    if (c->done)
        return;
    if (!c->joined && now - c->start_ns > (uint64_t)JOIN_TIMEOUT_MS * 1000000u) {
        finish(c, EXIT_JOIN, "no answer from %s within %d s (%s)", c->o.bridge,
               JOIN_TIMEOUT_MS / 1000, c->have_key ? "handshake" : "key request");
        return;
    }
    if (!c->have_key && !c->session_up && (now - c->start_ns) / 1000000000u >= c->key_tries)
        request_key(c); /* once a second until answered */
    if (c->session_up && ovl_session_next_timer(&c->s) <= now) {
        for (int i = 0; i < 4; i++) {
            if (ovl_session_timers(&c->s, now, out, sizeof(out), &n, &ev) != 0 || n == 0)
                break;
            send_msg(c, out, n);
        }
        if (ev & (OVL_EV_HANDSHAKE_FAILED | OVL_EV_EXPIRED)) {
            finish(c, c->joined ? EXIT_MEDIA : EXIT_JOIN, "the secure session with the bridge failed");
            return;
        }
    }
    if (!c->joined)
        return;
    /* Paced from the join instant, not from timer firings, so the send
     * rate does not drift; a late timer sends the frames it owes (bounded). */
    for (int i = 0; i < 8 && c->next_send_ns <= now && now < c->end_ns; i++) {
        int len = cli_media_next_packet(c->media, pkt, sizeof(pkt));
        if (len > 0)
            send_sealed(c, pkt, (size_t)len);
        c->next_send_ns += CLI_FRAME_MS * 1000000ull;
    }
    for (int i = 0; i < 8 && c->next_play_ns <= now; i++) {
        cli_media_play(c->media, now);
        c->next_play_ns += CLI_FRAME_MS * 1000000ull;
    }
    if (now >= c->end_ns)
        finish(c, EXIT_OK, NULL);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void finish(struct client *c, int code, const char *fmt, ...)
{
    va_list ap;

    if (c->done)
        return;
    c->done = true;
    c->exit_code = code;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
    }
    if (c->joined && code != EXIT_KICKED) {
        uint8_t bye[] = {BRG_CTRL_BYE, 'b', 'y', 'e'};
        send_sealed(c, bye, sizeof(bye));
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
    uv_close((uv_handle_t *)&c->sigint, on_closed);
    if (c->o.tcp)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    else
        uv_close((uv_handle_t *)&c->udp, on_closed);
}

static void on_sigint(uv_signal_t *s, int signum)
{
    (void)signum;
    finish(s->data, EXIT_OK, NULL);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: chorus-client [options]\n"
            "       chorus-client overlay [options]   (the overlay mode: see\n"
            "                                          chorus-client overlay --help)\n"
            "Joins a room on a Chorus bridge over a secure leg, sends audio, records\n"
            "what it hears, and prints the leg's statistics.\n\n"
            "  --bridge HOST:PORT   bridge media address (default 127.0.0.1:33033)\n"
            "  --room NAME          room to join (default demo)\n"
            "  --pin PIN            the room's PIN, if it has one\n"
            "  --name NAME          display name\n"
            "  --tcp                use TCP (RFC 4571 framing) instead of UDP\n"
            "  --tone HZ            send a sine tone of HZ\n"
            "  --level DBFS         tone level (default -12)\n"
            "  --wav FILE           send a 16-bit PCM WAV file (then silence)\n"
            "  --silence            send silence (the default)\n"
            "  --out FILE           write what we hear to FILE (WAV, 48 kHz mono)\n"
            "  --duration SECONDS   how long to stay (default 10)\n"
            "  --bitrate BPS        Opus bitrate (default 32000)\n"
            "  --bridge-key KEY     the bridge's identity (pinning); without it the key\n"
            "                       is fetched and trusted on first use\n"
            "  --identity FILE      our identity key (default: a fresh one per run)\n"
            "  --expect-audio       exit 4 unless we received media\n"
            "  --json               print the statistics as one JSON object\n"
            "  --help               this text\n\n"
            "Exit status: 0 ok, 2 usage, 3 could not join, 4 joined but no media,\n"
            "5 the bridge ended the leg.\n");
}

static int parse(struct opts *o, int argc, char **argv)
{
    enum { O_BRIDGE = 256, O_ROOM, O_PIN, O_NAME, O_TCP, O_TONE, O_LEVEL, O_WAV, O_SILENCE,
           O_OUT, O_DURATION, O_BITRATE, O_KEY, O_IDENTITY, O_EXPECT, O_JSON, O_HELP };
    static const struct option lo[] = {
        {"bridge", 1, 0, O_BRIDGE}, {"room", 1, 0, O_ROOM}, {"pin", 1, 0, O_PIN},
        {"name", 1, 0, O_NAME}, {"tcp", 0, 0, O_TCP}, {"tone", 1, 0, O_TONE},
        {"level", 1, 0, O_LEVEL}, {"wav", 1, 0, O_WAV}, {"silence", 0, 0, O_SILENCE},
        {"out", 1, 0, O_OUT}, {"duration", 1, 0, O_DURATION}, {"bitrate", 1, 0, O_BITRATE},
        {"bridge-key", 1, 0, O_KEY}, {"identity", 1, 0, O_IDENTITY},
        {"expect-audio", 0, 0, O_EXPECT}, {"json", 0, 0, O_JSON}, {"help", 0, 0, O_HELP},
        {0, 0, 0, 0},
    };
    char *end;
    int ch;

    o->bridge = "127.0.0.1:33033";
    o->room = "demo";
    o->duration = 10;
    o->media.tone_dbfs = -12;
    o->media.bitrate = 32000;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case O_BRIDGE: o->bridge = optarg; break;
        case O_ROOM: o->room = optarg; break;
        case O_PIN: o->pin = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_TCP: o->tcp = true; break;
        case O_TONE:
            o->media.source = CLI_SRC_TONE;
            o->media.tone_hz = strtod(optarg, &end);
            if (*end || o->media.tone_hz <= 0 || o->media.tone_hz >= 24000) {
                fprintf(stderr, "chorus-client: --tone: %s is not a frequency in (0, 24000) Hz\n", optarg);
                return -1;
            }
            break;
        case O_LEVEL:
            o->media.tone_dbfs = strtod(optarg, &end);
            if (*end || o->media.tone_dbfs > 0 || o->media.tone_dbfs < -90) {
                fprintf(stderr, "chorus-client: --level: %s is not a level in [-90, 0] dBFS\n", optarg);
                return -1;
            }
            break;
        case O_WAV: o->media.source = CLI_SRC_WAV; o->media.wav_in = optarg; break;
        case O_SILENCE: o->media.source = CLI_SRC_SILENCE; break;
        case O_OUT: o->media.wav_out = optarg; break;
        case O_DURATION:
            o->duration = strtod(optarg, &end);
            if (*end || o->duration <= 0 || o->duration > 86400) {
                fprintf(stderr, "chorus-client: --duration: %s is not a number of seconds in (0, 86400]\n", optarg);
                return -1;
            }
            break;
        case O_BITRATE:
            o->media.bitrate = (uint32_t)strtoul(optarg, &end, 10);
            if (*end || o->media.bitrate < 6000 || o->media.bitrate > 510000) {
                fprintf(stderr, "chorus-client: --bitrate: %s is not in [6000, 510000]\n", optarg);
                return -1;
            }
            break;
        case O_KEY: o->bridge_key = optarg; break;
        case O_IDENTITY: o->identity = optarg; break;
        case O_EXPECT: o->expect_audio = true; break;
        case O_JSON: o->json = true; break;
        case O_HELP: usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chorus-client: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int resolve(struct client *c)
{
    char host[256];
    uint16_t port;

    if (brg_config_parse_hostport(c->o.bridge, strlen(c->o.bridge), host, sizeof(host), &port) != 0 ||
        port == 0) {
        fprintf(stderr, "chorus-client: --bridge: %s is not HOST:PORT\n", c->o.bridge);
        return -1;
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&c->bridge) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&c->bridge) == 0)
        return 0;
    fprintf(stderr, "chorus-client: --bridge: %s is not an IP address\n", host);
    return -1;
}

static void print_stats(const struct client *c, const struct cli_stats *st)
{
    if (c->o.json) {
        printf("{\"joined\":%s,\"participant\":%u,\"transport\":\"%s\",\"sent\":%" PRIu64
               ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"late\":%" PRIu64
               ",\"concealed\":%" PRIu64 ",\"fec_recovered\":%" PRIu64 ",\"gaps\":%" PRIu64
               ",\"invalid\":%" PRIu64 ",\"jitter_ms\":%.2f}\n",
               c->joined ? "true" : "false", c->leg_id, c->o.tcp ? "tcp" : "udp", st->sent,
               st->received, st->lost, st->late, st->concealed, st->fec, st->gaps, st->invalid,
               st->jitter_ms);
        return;
    }
    printf("transport  %s\nparticipant %u\nsent       %" PRIu64 " packets (%" PRIu64 " bytes)\n"
           "received   %" PRIu64 " packets (%" PRIu64 " bytes)\nlost       %" PRIu64
           "\nlate       %" PRIu64 "\nconcealed  %" PRIu64 "\nfec        %" PRIu64
           "\ngaps       %" PRIu64 "\ninvalid    %" PRIu64 "\njitter     %.2f ms\n",
           c->o.tcp ? "tcp" : "udp", c->leg_id, st->sent, st->sent_bytes, st->received,
           st->received_bytes, st->lost, st->late, st->concealed, st->fec, st->gaps, st->invalid,
           st->jitter_ms);
}

int main(int argc, char **argv)
{
    static struct client c;
    struct ovl_endpoint_config ec = {0};
    struct cli_stats st;
    char err[256];
    int rc;

    if (argc > 1 && strcmp(argv[1], "overlay") == 0)
        return cli_overlay_main(argc - 1, argv + 1);
    signal(SIGPIPE, SIG_IGN);
    if (parse(&c.o, argc, argv) != 0) {
        fprintf(stderr, "Try 'chorus-client --help'.\n");
        return EXIT_USAGE;
    }
    if (sodium_init() < 0 || resolve(&c) != 0)
        return EXIT_USAGE;
    if (c.o.bridge_key) {
        if (ovl_pk_from_text(c.bridge_pk, c.o.bridge_key) != 0) {
            fprintf(stderr, "chorus-client: --bridge-key: not a valid key\n");
            return EXIT_USAGE;
        }
        c.have_key = true;
    }
    if (c.o.identity) {
        bool created;
        rc = ovl_identity_load_or_create(&c.id, c.o.identity, NULL, &created, err, sizeof(err));
    } else {
        rc = ovl_identity_generate(&c.id, NULL);
        snprintf(err, sizeof(err), "cannot generate an identity");
    }
    if (rc) {
        fprintf(stderr, "chorus-client: %s\n", err);
        return EXIT_USAGE;
    }
    ec.identity = &c.id;
    if (ovl_endpoint_init(&c.ep, &ec) != 0) {
        fprintf(stderr, "chorus-client: cannot set up the secure session layer\n");
        return EXIT_USAGE;
    }
    if (cli_media_new(&c.media, &c.o.media, err, sizeof(err)) != 0) {
        fprintf(stderr, "chorus-client: %s\n", err);
        return EXIT_USAGE;
    }
    c.loop = uv_default_loop();
    c.start_ns = now_ns();
    uv_timer_init(c.loop, &c.timer);
    c.timer.data = &c;
    uv_timer_start(&c.timer, on_timer, TICK_MS, TICK_MS);
    uv_signal_init(c.loop, &c.sigint);
    c.sigint.data = &c;
    uv_signal_start(&c.sigint, on_sigint, SIGINT);
    if (c.o.tcp) {
        ovl_stream_init(&c.st, c.stbuf, sizeof(c.stbuf));
        uv_tcp_init(c.loop, &c.tcp);
        c.tcp.data = &c;
        uv_tcp_nodelay(&c.tcp, 1);
        c.connect_req.data = &c;
        rc = uv_tcp_connect(&c.connect_req, &c.tcp, (const struct sockaddr *)&c.bridge, on_connected);
    } else {
        uv_udp_init(c.loop, &c.udp);
        c.udp.data = &c;
        rc = uv_udp_recv_start(&c.udp, ovl_uv_alloc_slab, on_udp);
        if (rc == 0) {
            /* recv_start binds an ephemeral port only after a send; bind now
             * so replies to the key request have somewhere to go. */
            struct sockaddr_storage any;
            memset(&any, 0, sizeof(any));
            any.ss_family = c.bridge.ss_family;
            uv_udp_bind(&c.udp, (const struct sockaddr *)&any, 0);
            begin(&c);
        }
    }
    if (rc) {
        finish(&c, EXIT_JOIN, "cannot reach %s: %s", c.o.bridge, uv_strerror(rc));
    }
    uv_run(c.loop, UV_RUN_DEFAULT);

    cli_media_finish(c.media, &st);
    print_stats(&c, &st);
    if (c.exit_code == EXIT_OK && c.o.expect_audio && st.received == 0) {
        c.exit_code = EXIT_MEDIA;
        snprintf(c.why, sizeof(c.why), "joined but received no media from the bridge");
    }
    if (c.exit_code != EXIT_OK)
        fprintf(stderr, "chorus-client: %s\n", c.why);
    if (c.session_up)
        ovl_session_close(&c.s);
    ovl_endpoint_close(&c.ep);
    ovl_identity_wipe(&c.id);
    cli_media_free(c.media);
    uv_loop_close(c.loop);
    return c.exit_code;
}
