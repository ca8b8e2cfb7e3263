/*
 * brg_secure.c: secure legs. chorus-client (and, later, peers arriving
 * through the overlay) reach the bridge on its media port, UDP and TCP
 * (RFC 4571 framing), and run the overlay's secure-session protocol
 * (ovl_secure.h: Noise IK, mac1/cookies, replay window, rekeying). The
 * handshake's payload is a join request (brg_join.h); once accepted, every
 * DATA message carries one RTP/RTCP packet or a control message.
 *
 * The bridge is the responder: it authenticates itself with its Ed25519
 * identity (state_dir/identity.key, created on first start) and learns the
 * client's. A room PIN is checked with crypto_pwhash on libuv's thread pool,
 * never on the loop.
 *
 * Thread: loop.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brg.h"
#include "brg_join.h"
#include "brg_log.h"
#include "ovl_secure.h"
#include "ovl_stream.h"
#include "ovl_stun.h"
#include "ovl_uv.h"

enum {
    TCP_MAX_CONNS = 1024,          /* connections at once */
    TCP_HANDSHAKE_MS = 10000,      /* to complete a join on a new connection */
    TCP_MAX_QUEUED = 64 * 1024,    /* bytes waiting to be written: beyond,
                                      media is dropped, not queued */
    MEDIA_SOCKET_BUFFER = 8 << 20, /* ~1 s of 2000 legs' traffic */
    SESS_IDLE_MS = BRG_MEDIA_TIMEOUT_MS,
};

struct brg_conn;

struct brg_sess {
    struct ovl_session s;
    struct brg *b;
    struct brg_leg *leg;
    struct brg_conn *conn;         /* TCP, or NULL for UDP */
    struct brg_sess *next;         /* all sessions */
    bool closed;
};

struct brg_conn {
    uv_tcp_t tcp;
    struct brg *b;
    struct ovl_stream st;
    /* Enough for any message a leg sends (an INIT with its payload, or one
     * sealed RTP packet), and small, so that connections that never join
     * cannot pin much memory. */
    uint8_t stbuf[2048];
    struct sockaddr_storage peer;
    struct brg_sess *sess;
    uint64_t opened_ms;
    bool closing;                  /* conn_close ran */
    bool handle_closed;            /* uv_close finished */
    int refs;                      /* PIN jobs still holding it */
    uv_shutdown_t shutdown;
    struct brg_conn *next;
};

struct pin_job {
    uv_work_t work;
    struct brg *b;
    struct ovl_hs hs;
    struct brg_join_req req;
    char hash[BRG_PIN_HASH_MAX];
    bool ok;
    struct brg_conn *conn;         /* TCP source, or NULL */
    struct sockaddr_storage from;  /* UDP source */
    int stream;
};

struct brg_secure {
    struct ovl_identity id;
    struct ovl_endpoint ep;
    uv_udp_t udp;
    uv_tcp_t tcp;
    bool udp_open, tcp_open;
    struct brg_sess *sessions;
    struct brg_conn *conns;
    unsigned nconns;
    uint64_t handshakes_pending;
};

static struct brg_secure *sec(struct brg *b)
{
    return b->secure;
}

static uint64_t now_ns(void)
{
    return brg_now_ms() * 1000000ull;
}

/* The compact source address the session layer compares: the sockaddr's
 * own bytes (16 for IPv4, 28 for IPv6). */
static size_t addr_bytes(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* ---- sending ---- */

static int tcp_send(struct brg_conn *c, const uint8_t *msg, size_t len)
{
    if (c->closing)
        return -ENOTCONN;
    return ovl_uv_write_framed((uv_stream_t *)&c->tcp, msg, len, TCP_MAX_QUEUED);
}

static int udp_send(struct brg *b, const uint8_t *addr, size_t addr_len,
                    const uint8_t *msg, size_t len)
{
    struct sockaddr_storage ss;
    uv_buf_t buf = uv_buf_init((char *)msg, (unsigned)len);
    int rc;

    if (addr_len < sizeof(struct sockaddr_in) || addr_len > sizeof(ss))
        return -EINVAL;
    memcpy(&ss, addr, addr_len);
    rc = uv_udp_try_send(&sec(b)->udp, &buf, 1, (const struct sockaddr *)&ss);
    return rc < 0 ? rc : 0;
}

/* Sends a message of session @s to wherever its peer is. */
static int sess_send(struct brg_sess *s, const uint8_t *msg, size_t len)
{
    size_t alen;
    const uint8_t *addr;

    if (s->conn)
        return tcp_send(s->conn, msg, len);
    addr = ovl_session_addr(&s->s, &alen);
    return udp_send(s->b, addr, alen, msg, len);
}

static int sess_seal_send(struct brg_sess *s, const uint8_t *plain, size_t len)
{
    uint8_t out[BRG_MAX_DATAGRAM + OVL_DATA_OVERHEAD];
    size_t n;
    int rc = ovl_session_seal(&s->s, plain, len, now_ns(), out, sizeof(out), &n);

    if (rc)
        return rc;
    return sess_send(s, out, n);
}

int brg_secure_send(struct brg *b, struct brg_leg *l, const uint8_t *pkt, size_t len)
{
    struct brg_sess *s = l->sess;

    (void)b;
    if (!s || s->closed)
        return -ENOTCONN;
    return sess_seal_send(s, pkt, len);
}

/* ---- sessions ---- */

static void conn_close(struct brg_conn *c);
static void conn_unref(struct brg_conn *c);

static void sess_free(struct brg *b, struct brg_sess *s)
{
    for (struct brg_sess **pp = &sec(b)->sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    ovl_session_close(&s->s);
    sodium_memzero(s, sizeof(*s));
    free(s);
}

/* The leg is leaving: tell the client why, then drop the session. */
void brg_secure_close(struct brg *b, struct brg_leg *l, const char *reason)
{
    struct brg_sess *s = l->sess;
    uint8_t bye[1 + 64];
    size_t n = strlen(reason);

    if (!s)
        return;
    if (n > sizeof(bye) - 1)
        n = sizeof(bye) - 1;
    bye[0] = BRG_CTRL_BYE;
    memcpy(bye + 1, reason, n);
    sess_seal_send(s, bye, 1 + n);
    l->sess = NULL;
    s->leg = NULL;
    s->closed = true;
    if (s->conn) {
        s->conn->sess = NULL;
        conn_close(s->conn);
    }
    sess_free(b, s);
}

static void handle_plain(struct brg *b, struct brg_sess *s, const uint8_t *p, size_t len)
{
    struct brg_leg *l = s->leg;

    if (!l || len == 0)
        return;
    if (p[0] == BRG_CTRL_BYE) {
        brg_leg_remove(b, l, "bye");
        return;
    }
    if (p[0] >= 0x80 && p[0] <= 0xBF) {
        if (brg_rtp_demux(p, len) == BRG_PKT_RTP)
            brg_leg_rx_rtp(b, l, p, len);
        else
            l->last_rx_ms = brg_now_ms(); /* RTCP: alive */
        return;
    }
    l->rx_invalid++;
    b->c.rx_invalid++;
}

/* ---- joining ---- */

static void answer_reject(struct brg *b, struct ovl_hs *hs, struct brg_conn *c,
                          const uint8_t *addr, size_t alen, const char *why)
{
    struct brg_join_resp resp = {.ok = false};
    uint8_t app[256], out[OVL_RESP_MAX];
    size_t n;
    int len;

    snprintf(resp.error, sizeof(resp.error), "%s", why);
    len = brg_join_resp_encode(&resp, app, sizeof(app));
    b->c.handshakes_failed++;
    if (len < 0 || ovl_hs_responder_reject(hs, &sec(b)->ep, app, (size_t)len, out,
                                           sizeof(out), &n) != 0) {
        ovl_hs_discard(hs);
        return;
    }
    if (c)
        tcp_send(c, out, n);
    else
        udp_send(b, addr, alen, out, n);
    BRG_LOG_RATELIMITED("bridge.secure", BRG_LOG_INFO, "join refused: %s", why);
}

/* Accepts the join: a session, a leg, the RESP. */
static void answer_accept(struct brg *b, struct ovl_hs *hs, struct brg_conn *c,
                          const uint8_t *addr, size_t alen,
                          const struct brg_join_req *req)
{
    struct brg_room_rt *r = brg_room_find(b, req->room);
    struct brg_join_resp resp = {.ok = true};
    uint8_t app[256], out[OVL_RESP_MAX];
    struct brg_sess *s;
    struct brg_leg *l;
    size_t n;
    int len, rc;

    if (!r || r->dying) {
        answer_reject(b, hs, c, addr, alen, "no such room");
        return;
    }
    if (c && c->sess) {
        answer_reject(b, hs, c, addr, alen, "this connection already carries a leg");
        return;
    }
    rc = brg_leg_new(b, r, BRG_LEG_SECURE, c ? BRG_TCP : BRG_UDP, MIX_CODEC_OPUS,
                     req->rate, &l);
    if (rc) {
        answer_reject(b, hs, c, addr, alen,
                      rc == -ENOSPC ? "the room is full"
                                    : (rc == -EMFILE ? "the bridge is full" : "cannot join now"));
        return;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        brg_leg_remove(b, l, "out of memory");
        answer_reject(b, hs, c, addr, alen, "cannot join now");
        return;
    }
    s->b = b;
    ovl_session_init(&s->s, &sec(b)->ep, NULL);
    resp.id = l->id;
    resp.sample_rate = r->rec.sample_rate;
    resp.frame_ms = r->rec.frame_ms;
    len = brg_join_resp_encode(&resp, app, sizeof(app));
    if (len < 0)
        ovl_hs_discard(hs); /* accept wipes it in every case; so must we */
    rc = len < 0 ? len
                 : ovl_hs_responder_accept(hs, &s->s, app, (size_t)len, now_ns(), out,
                                           sizeof(out), &n);
    if (rc) {
        ovl_session_close(&s->s);
        free(s);
        brg_leg_remove(b, l, "handshake failed");
        b->c.handshakes_failed++;
        return;
    }
    s->leg = l;
    s->conn = c;
    l->sess = s;
    snprintf(l->display_name, sizeof(l->display_name), "%s", req->name);
    if (c) {
        c->sess = s;
        l->remote = c->peer;
    } else {
        memcpy(&l->remote, addr, alen);
    }
    l->remote_known = true;
    s->next = sec(b)->sessions;
    sec(b)->sessions = s;
    b->c.handshakes_ok++;
    sess_send(s, out, n);
    brg_leg_joined(b, l);
}

static void pin_work(uv_work_t *w)
{
    struct pin_job *j = w->data;

    j->ok = brg_store_pin_verify(j->hash, j->req.pin);
}

static void pin_done(uv_work_t *w, int status)
{
    struct pin_job *j = w->data;
    struct brg *b = j->b;
    const uint8_t *addr = (const uint8_t *)&j->from;
    size_t alen = addr_bytes((const struct sockaddr *)&j->from);

    sec(b)->handshakes_pending--;
    if (b->stopping || (j->conn && j->conn->closing)) {
        ovl_hs_discard(&j->hs);
    } else if (status != 0 || !j->ok) {
        answer_reject(b, &j->hs, j->conn, addr, alen, "wrong PIN");
    } else {
        answer_accept(b, &j->hs, j->conn, addr, alen, &j->req);
    }
    if (j->conn)
        conn_unref(j->conn);
    sodium_memzero(j, sizeof(*j));
    free(j);
}

static struct brg_sess *sess_by_identity(struct brg *b, const uint8_t *identity)
{
    for (struct brg_sess *s = sec(b)->sessions; s; s = s->next) {
        const uint8_t *id = ovl_session_remote_identity(&s->s);
        if (id && sodium_memcmp(id, identity, OVL_ED_PK_LEN) == 0)
            return s;
    }
    return NULL;
}

/* A handshake from a peer that already has a session: a rekey, or the
 * first INIT again because our RESP was lost. Either way the keys are
 * refreshed in the existing session and the leg stays. Returns true when
 * handled. */
static bool rehandshake(struct brg *b, struct ovl_hs *hs, const struct ovl_rx *rx,
                        struct brg_conn *c)
{
    struct brg_sess *old = sess_by_identity(b, rx->peer.identity);
    bool rekey = rx->peer.flags & OVL_INIT_FLAG_REKEY;
    struct brg_join_resp resp = {.ok = true};
    uint8_t app[256], out[OVL_RESP_MAX];
    size_t n;
    int len = 0;

    if (!old || old->conn != c || !old->leg) {
        if (rekey) {
            ovl_hs_discard(hs); /* nothing to refresh */
            return true;
        }
        if (old && old->leg) /* the same identity, on another transport */
            brg_leg_remove(b, old->leg, "replaced by a new connection");
        return false;
    }
    if (!rekey) {
        resp.id = old->leg->id;
        resp.sample_rate = old->leg->room->rec.sample_rate;
        resp.frame_ms = old->leg->room->rec.frame_ms;
        len = brg_join_resp_encode(&resp, app, sizeof(app));
    }
    if (len < 0) {
        ovl_hs_discard(hs); /* accept would have wiped it; do it here */
        return true;
    }
    if (ovl_hs_responder_accept(hs, &old->s, app, (size_t)len, now_ns(), out,
                                sizeof(out), &n) != 0)
        return true;
    sess_send(old, out, n);
    return true;
}

static void on_handshake(struct brg *b, struct ovl_hs *hs, const struct ovl_rx *rx,
                         struct brg_conn *c, const uint8_t *addr, size_t alen)
{
    struct brg_join_req req;
    struct brg_room_rt *r;
    struct pin_job *j;

    if (rehandshake(b, hs, rx, c))
        return;
    if (brg_join_req_decode(&req, rx->data, rx->data_len) != 0) {
        answer_reject(b, hs, c, addr, alen, "malformed join request");
        return;
    }
    r = brg_room_find(b, req.room);
    if (!r || r->dying) {
        answer_reject(b, hs, c, addr, alen, "no such room");
        return;
    }
    if (!r->rec.pin_hash[0]) {
        answer_accept(b, hs, c, addr, alen, &req);
        return;
    }
    if (!req.pin[0]) {
        answer_reject(b, hs, c, addr, alen, "this room needs a PIN");
        return;
    }
    /* crypto_pwhash costs tens of milliseconds by design: off the loop. A
     * bound on jobs in flight keeps a flood of valid handshakes from
     * queueing the thread pool without end. */
    if (sec(b)->handshakes_pending >= 64 || !(j = calloc(1, sizeof(*j)))) {
        answer_reject(b, hs, c, addr, alen, "busy, try again");
        return;
    }
    j->b = b;
    j->hs = *hs;
    sodium_memzero(hs, sizeof(*hs));
    j->req = req;
    memcpy(j->hash, r->rec.pin_hash, sizeof(j->hash));
    j->conn = c;
    if (c)
        c->refs++;
    else
        memcpy(&j->from, addr, alen);
    j->work.data = j;
    sec(b)->handshakes_pending++;
    if (uv_queue_work(b->loop, &j->work, pin_work, pin_done) != 0) {
        sec(b)->handshakes_pending--;
        answer_reject(b, &j->hs, c, addr, alen, "busy, try again");
        /* Drop the job's hold on c only after the reply used it, and wipe
         * the PIN and handshake state as pin_done does. */
        if (c)
            conn_unref(c);
        sodium_memzero(j, sizeof(*j));
        free(j);
    }
}

/* ---- receiving ---- */

static struct brg_sess *sess_of(struct ovl_session *os)
{
    return os ? (struct brg_sess *)((char *)os - offsetof(struct brg_sess, s)) : NULL;
}

/* One secure-session message from @addr (UDP) or on connection @c. */
static void secure_recv(struct brg *b, const uint8_t *buf, size_t len,
                        const uint8_t *addr, size_t alen, struct brg_conn *c)
{
    static uint8_t out[65536 + OVL_INIT_MAX]; /* the loop is one thread */
    struct ovl_datagram in = {.buf = buf, .len = len, .addr = addr,
                              .addr_len = alen, .stream = c != NULL};
    struct ovl_hs hs;
    struct ovl_rx rx;
    struct brg_sess *s;
    int rc;

    memset(&hs, 0, sizeof(hs));
    rc = ovl_endpoint_recv(&sec(b)->ep, &in, now_ns(), &hs, out, sizeof(out), &rx);
    if (rc == -EBADMSG) {
        b->c.rx_invalid++;
        BRG_LOG_RATELIMITED("bridge.secure", BRG_LOG_DEBUG, "dropped secure message: %s",
                            ovl_drop_name(rx.drop));
        return;
    }
    if (rc)
        return;
    s = sess_of(rx.session);
    /* A session is bound to its transport: a message for a UDP session on a
     * TCP connection (or the reverse, or another connection) is refused. */
    if (s && (s->conn != c)) {
        b->c.rx_invalid++;
        return;
    }
    switch (rx.kind) {
    case OVL_RX_REPLY:
        if (c)
            tcp_send(c, rx.reply, rx.reply_len);
        else
            udp_send(b, addr, alen, rx.reply, rx.reply_len);
        break;
    case OVL_RX_HANDSHAKE:
        on_handshake(b, &hs, &rx, c, addr, alen);
        break;
    case OVL_RX_DATA:
        if (s && s->leg && (rx.events & OVL_EV_ADDR_CHANGED) && !c) {
            memcpy(&s->leg->remote, addr, alen);
            BRG_LOGI("bridge.secure", "participant %u moved to a new address", s->leg->id);
        }
        if (s)
            handle_plain(b, s, rx.data, rx.data_len);
        break;
    case OVL_RX_KEEPALIVE:
        if (s && s->leg)
            s->leg->last_rx_ms = brg_now_ms();
        break;
    case OVL_RX_RESPONSE:
    case OVL_RX_KEY_REPLY:
    case OVL_RX_NONE:
        break;
    }
}

/* ---- STUN (ovl_stun.h): Binding requests on the media port ---- */

/* Answers a STUN Binding request with the sender's reflexive address
 * (XOR-MAPPED-ADDRESS and MAPPED-ADDRESS), so peers and standard STUN
 * clients learn how they reach us. Nothing else is answered (no
 * amplification): malformed messages count as rx_invalid; indications,
 * responses and other methods as rx_unknown. One address: a CHANGE-REQUEST
 * that asks for a change gets 420 (RFC 5780). */
static void stun_recv(struct brg *b, const uint8_t *buf, size_t len,
                      const struct sockaddr *from)
{
    static const struct ovl_stun_server srv = {.mapped_address = true};
    enum ovl_stun_drop drop = OVL_STUN_DROP_NONE;
    uint8_t out[OVL_STUN_RESP_MAX];
    struct ovl_stun_reply reply;
    struct ovl_stun_addr src;
    uv_buf_t ub;

    if (ovl_stun_addr_from_sockaddr(&src, from) != 0 ||
        ovl_stun_server_handle(&srv, buf, len, &src, NULL, out, sizeof(out), &reply,
                               &drop) != 0) {
        if (ovl_stun_drop_is_malformed(drop))
            b->c.rx_invalid++;
        else
            b->c.rx_unknown++;
        BRG_LOG_RATELIMITED("bridge.stun", BRG_LOG_DEBUG, "dropped STUN message: %s",
                            ovl_stun_drop_name(drop));
        return;
    }
    ub = uv_buf_init((char *)out, (unsigned)reply.len);
    /* Best effort: a client whose answer is lost retransmits. */
    if (uv_udp_try_send(&sec(b)->udp, &ub, 1, from) < 0)
        b->c.tx_errors++;
}

/* ---- end STUN ---- */

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags)
{
    struct brg *b = h->data;

    if (nread <= 0 || !from)
        return;
    if (flags & UV_UDP_PARTIAL) {
        b->c.rx_invalid++;
        return;
    }
    switch (ovl_wire_classify((const uint8_t *)buf->base, (size_t)nread)) {
    case OVL_CLASS_SECURE:
        secure_recv(b, (const uint8_t *)buf->base, (size_t)nread, (const uint8_t *)from,
                    addr_bytes(from), NULL);
        break;
    case OVL_CLASS_STUN:
        stun_recv(b, (const uint8_t *)buf->base, (size_t)nread, from);
        break;
    default:
        /* Plain RTP has ports of its own. Anything else here is noise. */
        b->c.rx_unknown++;
        break;
    }
}

/* ---- TCP ---- */

static void conn_maybe_free(struct brg_conn *c)
{
    if (c->handle_closed && c->refs == 0)
        free(c);
}

static void conn_unref(struct brg_conn *c)
{
    c->refs--;
    conn_maybe_free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct brg_conn *c = h->data;

    c->handle_closed = true;
    conn_maybe_free(c);
}

static void on_conn_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    uv_close((uv_handle_t *)req->handle, on_conn_closed);
}

static void conn_close(struct brg_conn *c)
{
    struct brg_secure *sc = sec(c->b);

    if (c->closing)
        return;
    c->closing = true;
    for (struct brg_conn **pp = &sc->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    sc->nconns--;
    if (c->sess) {
        struct brg_sess *s = c->sess;
        c->sess = NULL;
        s->conn = NULL;
        s->closed = true;
        if (s->leg) {
            s->leg->sess = NULL;
            brg_leg_remove(c->b, s->leg, "connection closed");
        }
        sess_free(c->b, s);
    }
    /* Let queued writes (a BYE) go out before the connection closes. */
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_conn_shutdown) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_tcp_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct brg_conn *c = h->data;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t left = nread > 0 ? (size_t)nread : 0;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    /* Bounded by the bytes read: every round consumes some or ends. */
    while (left > 0 && !c->closing) {
        const uint8_t *msg;
        size_t used, mlen;
        int rc = ovl_stream_feed(&c->st, p, left, &used, &msg, &mlen);

        if (rc < 0) {
            c->b->c.rx_invalid++;
            conn_close(c);
            return;
        }
        p += used;
        left -= used;
        if (rc == 0)
            break;
        if (ovl_wire_classify(msg, mlen) != OVL_CLASS_SECURE) {
            c->b->c.rx_invalid++;
            conn_close(c);
            return;
        }
        secure_recv(c->b, msg, mlen, (const uint8_t *)&c->peer,
                    addr_bytes((const struct sockaddr *)&c->peer), c);
    }
}

static void on_tcp_conn(uv_stream_t *server, int status)
{
    struct brg *b = server->data;
    struct brg_secure *sc = sec(b);
    struct brg_conn *c;
    int len = sizeof(struct sockaddr_storage);

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->b = b;
    uv_tcp_init(b->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || sc->nconns >= TCP_MAX_CONNS) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
    uv_tcp_nodelay(&c->tcp, 1);
    ovl_stream_init(&c->st, c->stbuf, sizeof(c->stbuf));
    c->opened_ms = brg_now_ms();
    c->next = sc->conns;
    sc->conns = c;
    sc->nconns++;
    uv_read_start((uv_stream_t *)&c->tcp, ovl_uv_alloc_slab, on_tcp_read);
}

/* ---- life ---- */

static int bind_addr(struct brg *b, struct sockaddr_storage *ss)
{
    if (uv_ip4_addr(b->cfg->media_addr, b->cfg->media_port, (struct sockaddr_in *)ss) == 0)
        return 0;
    return uv_ip6_addr(b->cfg->media_addr, b->cfg->media_port, (struct sockaddr_in6 *)ss);
}

int brg_secure_start(struct brg *b)
{
    struct brg_secure *sc = calloc(1, sizeof(*sc));
    struct ovl_endpoint_config ec = {0};
    struct sockaddr_storage ss;
    char path[4096], err[256], pk[OVL_PK_TEXT_LEN];
    bool created = false;
    int rc;

    if (!sc)
        return -ENOMEM;
    b->secure = sc;
    snprintf(path, sizeof(path), "%s/identity.key", b->cfg->state_dir);
    rc = ovl_identity_load_or_create(&sc->id, path, NULL, &created, err, sizeof(err));
    if (rc) {
        BRG_LOGE("bridge.secure", "identity: %s", err);
        return rc;
    }
    ovl_pk_to_text(pk, sc->id.ed_pk);
    BRG_LOGI("bridge.secure", "%s identity %s (%s)", created ? "created" : "loaded", pk, path);
    ec.identity = &sc->id;
    ec.responder = true;
    ec.max_sessions = (uint32_t)b->cfg->max_legs + 16;
    rc = ovl_endpoint_init(&sc->ep, &ec);
    if (rc)
        return rc;
    if ((rc = bind_addr(b, &ss)) != 0) {
        BRG_LOGE("bridge", "media_addr %s is not an IP address", b->cfg->media_addr);
        return rc;
    }
    /* recvmmsg: one syscall per batch of datagrams on the busiest socket. */
    uv_udp_init_ex(b->loop, &sc->udp, ss.ss_family | UV_UDP_RECVMMSG);
    sc->udp.data = b;
    sc->udp_open = true;
    rc = uv_udp_bind(&sc->udp, (const struct sockaddr *)&ss, 0);
    if (rc == 0) {
        int granted = 0;

        ovl_uv_udp_buffers(&sc->udp, MEDIA_SOCKET_BUFFER, &granted);
        if (granted < MEDIA_SOCKET_BUFFER)
            BRG_LOGW("bridge", "media socket receive buffer is %d bytes, not %d: raise net.core.rmem_max or run with CAP_NET_ADMIN, or expect drops beyond a few hundred legs",
                     granted / 2, MEDIA_SOCKET_BUFFER);
        rc = uv_udp_recv_start(&sc->udp, ovl_uv_alloc_mmsg, on_udp);
    }
    if (rc) {
        BRG_LOGE("bridge", "cannot bind UDP %s:%d: %s", b->cfg->media_addr, b->cfg->media_port,
                 uv_strerror(rc));
        return rc;
    }
    uv_tcp_init(b->loop, &sc->tcp);
    sc->tcp.data = b;
    sc->tcp_open = true;
    rc = uv_tcp_bind(&sc->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&sc->tcp, 128, on_tcp_conn);
    if (rc) {
        BRG_LOGE("bridge", "cannot listen on TCP %s:%d: %s", b->cfg->media_addr,
                 b->cfg->media_port, uv_strerror(rc));
        return rc;
    }
    return 0;
}

void brg_secure_stop(struct brg *b)
{
    struct brg_secure *sc = sec(b);

    if (!sc)
        return;
    while (sc->conns)
        conn_close(sc->conns);
    while (sc->sessions) {
        struct brg_sess *s = sc->sessions;
        if (s->leg)
            brg_leg_remove(b, s->leg, "bridge shutting down"); /* frees s */
        else
            sess_free(b, s);
    }
    if (sc->udp_open)
        uv_close((uv_handle_t *)&sc->udp, NULL);
    if (sc->tcp_open)
        uv_close((uv_handle_t *)&sc->tcp, NULL);
    sc->udp_open = sc->tcp_open = false;
}

const struct ovl_identity *brg_secure_identity(struct brg *b)
{
    return sec(b) ? &sec(b)->id : NULL;
}

void brg_secure_free(struct brg *b)
{
    struct brg_secure *sc = sec(b);

    if (!sc)
        return;
    ovl_endpoint_close(&sc->ep);
    ovl_identity_wipe(&sc->id);
    free(sc);
    b->secure = NULL;
}

/* Session timers (rekey, keepalive, expiry), media time-outs and TCP
 * connections that never joined. */
void brg_secure_tick(struct brg *b, uint64_t now_ms)
{
    struct brg_secure *sc = sec(b);
    uint64_t now = now_ms * 1000000ull;

    if (!sc)
        return;
    for (struct brg_sess *s = sc->sessions, *next; s; s = next) {
        uint8_t out[OVL_INIT_MAX + 64];
        size_t n = 0;
        uint32_t ev = 0;

        next = s->next;
        if (ovl_session_next_timer(&s->s) <= now) {
            for (int i = 0; i < 4; i++) {
                if (ovl_session_timers(&s->s, now, out, sizeof(out), &n, &ev) != 0 || n == 0)
                    break;
                sess_send(s, out, n);
            }
        }
        if (s->leg && ((ev & OVL_EV_EXPIRED) || now_ms - s->leg->last_rx_ms > SESS_IDLE_MS))
            brg_leg_remove(b, s->leg, (ev & OVL_EV_EXPIRED) ? "session expired" : "media timeout");
    }
    for (struct brg_conn *c = sc->conns, *next; c; c = next) {
        next = c->next;
        if (!c->sess && now_ms - c->opened_ms > TCP_HANDSHAKE_MS)
            conn_close(c);
    }
}
