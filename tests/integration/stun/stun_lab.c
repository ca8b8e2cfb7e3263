/*
 * stun_lab.c: the two ends of the NAT-discovery tests, on real sockets.
 *
 *   stun_lab server --ip IP [--ip IP2] --port P [--port P2] [--for SECONDS]
 *       An RFC 5780 STUN server made of ovl_stun_server_handle: it listens
 *       on every IP x port combination and answers CHANGE-REQUEST from the
 *       other address. With one IP and one port it behaves like a
 *       supernode (420 for changes). Exits after SECONDS (default 60).
 *
 *   stun_lab probe --local IP:PORT --server IP:PORT [--second IP:PORT]
 *                  [--rto MS] [--rc N] [--rm N] [--timeout SECONDS]
 *       Runs the ovl_nat classifier once from one UDP socket bound to
 *       --local and prints
 *         nat: type=T mapping=M filtering=F reflexive=A reflexive2=A other=A
 *       Exit 0 when a result came, 2 on a time-out, 1 on errors.
 *
 * A test driver, not a product: plain poll(2), bounded in time.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ovl_nat.h"
#include "ovl_stun.h"
#include "ovl_wire.h"

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int udp_bind(const struct ovl_stun_addr *a)
{
    struct sockaddr_storage ss;
    int len = ovl_stun_addr_to_sockaddr(a, &ss);
    int fd, one = 1;

    if (len < 0)
        return -1;
    fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0) {
        char t[OVL_STUN_ADDR_TEXT_MAX];

        fprintf(stderr, "stun_lab: bind %s: %s\n", ovl_stun_addr_format(t, sizeof(t), a),
                strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int send_to(int fd, const uint8_t *buf, size_t len, const struct ovl_stun_addr *dst)
{
    struct sockaddr_storage ss;
    int sl = ovl_stun_addr_to_sockaddr(dst, &ss);

    if (sl < 0)
        return -1;
    return sendto(fd, buf, len, 0, (struct sockaddr *)&ss, (socklen_t)sl) < 0 ? -1 : 0;
}

/* ---- server ---- */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int run_server(struct ovl_stun_server *srv, unsigned nip, unsigned nport, int secs)
{
    struct pollfd pfd[4];
    struct ovl_stun_addr local[4];
    unsigned n = 0;
    uint64_t end = now_ms() + (uint64_t)secs * 1000u;
    unsigned long answered = 0, dropped = 0;

    srv->rfc5780 = nip == 2 && nport == 2;
    for (unsigned i = 0; i < nip; i++) {
        for (unsigned j = 0; j < nport; j++) {
            local[n] = srv->ip[i];
            local[n].port = srv->port[j];
            pfd[n].fd = udp_bind(&local[n]);
            pfd[n].events = POLLIN;
            if (pfd[n].fd < 0)
                return 1;
            n++;
        }
    }
    printf("stun_lab: serving on %u addresses (rfc5780 %s)\n", n, srv->rfc5780 ? "on" : "off");
    fflush(stdout);
    while (!stop && now_ms() < end) {
        int rc = poll(pfd, n, 200);

        if (rc < 0 && errno != EINTR)
            return 1;
        for (unsigned k = 0; rc > 0 && k < n; k++) {
            uint8_t buf[2048], out[OVL_STUN_RESP_MAX];
            struct sockaddr_storage from;
            socklen_t fl = sizeof(from);
            struct ovl_stun_addr src;
            struct ovl_stun_reply reply;
            enum ovl_stun_drop drop;
            ssize_t len;
            unsigned via;

            if (!(pfd[k].revents & POLLIN))
                continue;
            len = recvfrom(pfd[k].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
            if (len <= 0 || ovl_stun_addr_from_sockaddr(&src, (struct sockaddr *)&from) != 0 ||
                ovl_wire_classify(buf, (size_t)len) != OVL_CLASS_STUN ||
                ovl_stun_server_handle(srv, buf, (size_t)len, &src, &local[k], out,
                                       sizeof(out), &reply, &drop) != 0) {
                dropped++;
                continue;
            }
            /* The socket bound to the address the reply must come from. */
            via = srv->rfc5780 ? reply.from_ip * 2 + reply.from_port : k;
            if (send_to(pfd[via].fd, out, reply.len, &src) == 0)
                answered++;
        }
    }
    printf("stun_lab: answered %lu, dropped %lu\n", answered, dropped);
    for (unsigned k = 0; k < n; k++)
        close(pfd[k].fd);
    return 0;
}

/* ---- probe ---- */

static int run_probe(const struct ovl_nat_config *cfg, int timeout_s)
{
    struct ovl_nat nat;
    struct pollfd pfd;
    uint64_t end = now_ms() + (uint64_t)timeout_s * 1000u;
    char t[4][OVL_STUN_ADDR_TEXT_MAX];

    pfd.fd = udp_bind(&cfg->local);
    pfd.events = POLLIN;
    if (pfd.fd < 0)
        return 1;
    ovl_nat_init(&nat, cfg);
    ovl_nat_start(&nat, now_ms());
    while (now_ms() < end) {
        uint8_t buf[2048];
        struct ovl_stun_addr dst;
        size_t len;
        uint64_t now = now_ms(), next;
        int ev = 0, wait_ms;

        while (ovl_nat_next_datagram(&nat, now, buf, sizeof(buf), &len, &dst) == 1)
            send_to(pfd.fd, buf, len, &dst); /* a lost send is a lost packet */
        next = ovl_nat_next_timer(&nat);
        wait_ms = next <= now ? 0 : next - now > 1000 ? 1000 : (int)(next - now);
        if (poll(&pfd, 1, wait_ms) > 0 && (pfd.revents & POLLIN)) {
            struct sockaddr_storage from;
            socklen_t fl = sizeof(from);
            struct ovl_stun_addr src;
            ssize_t n = recvfrom(pfd.fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

            if (n > 0 && ovl_stun_addr_from_sockaddr(&src, (struct sockaddr *)&from) == 0) {
                int rc = ovl_nat_recv(&nat, buf, (size_t)n, &src, now_ms());

                ev |= rc > 0 ? rc : 0;
            }
        }
        if (ovl_nat_next_timer(&nat) <= now_ms())
            ev |= ovl_nat_timeout(&nat, now_ms());
        if (ev & OVL_NAT_EV_DONE) {
            const struct ovl_nat_result *r = ovl_nat_result(&nat);

            printf("nat: type=%s mapping=%s filtering=%s reflexive=%s reflexive2=%s other=%s\n",
                   ovl_nat_type_name(r->type), ovl_nat_mapping_name(r->mapping),
                   ovl_nat_filtering_name(r->filtering),
                   ovl_stun_addr_format(t[0], sizeof(t[0]), &r->reflexive),
                   ovl_stun_addr_format(t[1], sizeof(t[1]), &r->reflexive2),
                   ovl_stun_addr_format(t[2], sizeof(t[2]), &r->other));
            close(pfd.fd);
            return 0;
        }
    }
    fprintf(stderr, "stun_lab: no result within %d s\n", timeout_s);
    close(pfd.fd);
    return 2;
}

static int usage(void)
{
    fprintf(stderr, "usage: stun_lab server --ip IP [--ip IP2] --port P [--port P2] [--for S]\n"
                    "       stun_lab probe --local IP:PORT --server IP:PORT [--second IP:PORT]"
                    " [--rto MS] [--rc N] [--rm N] [--timeout S]\n");
    return 1;
}

static int addr_arg(struct ovl_stun_addr *a, const char *text)
{
    if (ovl_stun_addr_parse(a, text) != 0) {
        fprintf(stderr, "stun_lab: bad address '%s' (want IP:PORT or [IPv6]:PORT)\n", text);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "server") == 0) {
        struct ovl_stun_server srv = {.mapped_address = true, .software = "chorus stun_lab"};
        unsigned nip = 0, nport = 0;
        int secs = 60;

        for (int i = 2; i + 1 < argc; i += 2) {
            char text[80];

            if (strcmp(argv[i], "--ip") == 0 && nip < 2) {
                snprintf(text, sizeof(text), strchr(argv[i + 1], ':') ? "[%s]:0" : "%s:0",
                         argv[i + 1]);
                if (addr_arg(&srv.ip[nip++], text))
                    return 1;
            } else if (strcmp(argv[i], "--port") == 0 && nport < 2) {
                srv.port[nport++] = (uint16_t)atoi(argv[i + 1]);
            } else if (strcmp(argv[i], "--for") == 0) {
                secs = atoi(argv[i + 1]);
            } else {
                return usage();
            }
        }
        if (nip == 0 || nport == 0 || secs <= 0)
            return usage();
        return run_server(&srv, nip, nport, secs);
    }
    if (strcmp(argv[1], "probe") == 0) {
        struct ovl_nat_config cfg = {.software = "chorus stun_lab"};
        int timeout_s = 120;

        for (int i = 2; i + 1 < argc; i += 2) {
            const char *o = argv[i], *v = argv[i + 1];

            if (strcmp(o, "--local") == 0 ? addr_arg(&cfg.local, v)
                : strcmp(o, "--server") == 0 ? addr_arg(&cfg.server, v)
                : strcmp(o, "--second") == 0 ? addr_arg(&cfg.second, v)
                : 0)
                return 1;
            if (strcmp(o, "--rto") == 0)
                cfg.rto_ms = (uint32_t)atoi(v);
            else if (strcmp(o, "--rc") == 0)
                cfg.rc = (uint32_t)atoi(v);
            else if (strcmp(o, "--rm") == 0)
                cfg.rm = (uint32_t)atoi(v);
            else if (strcmp(o, "--timeout") == 0)
                timeout_s = atoi(v);
            else if (strcmp(o, "--local") && strcmp(o, "--server") && strcmp(o, "--second"))
                return usage();
        }
        if (cfg.local.family == OVL_STUN_FAMILY_NONE || cfg.server.family == OVL_STUN_FAMILY_NONE)
            return usage();
        return run_probe(&cfg, timeout_s);
    }
    return usage();
}
