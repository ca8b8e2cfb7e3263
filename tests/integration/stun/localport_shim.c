/*
 * localport_shim.c: an LD_PRELOAD helper for the STUN interop test.
 *
 * turnutils_stunclient prints the reflexive address it was told, but not
 * the local port it sent from, which is what the answer must equal on
 * loopback. This wraps sendto(2): after each successful send it writes
 *   chorus-shim: local IP:PORT
 * for the sending socket to stderr. Nothing else changes.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *,
                             socklen_t);

static void report(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN], line[128];
    int n;

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        n = snprintf(line, sizeof(line), "chorus-shim: local %s:%u\n", ip, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        n = snprintf(line, sizeof(line), "chorus-shim: local [%s]:%u\n", ip,
                     ntohs(in6->sin6_port));
    } else {
        return;
    }
    if (n > 0 && (size_t)n < sizeof(line) && write(2, line, (size_t)n) < 0)
        return;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen)
{
    static sendto_fn real;
    ssize_t n;

    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "sendto");

        memcpy(&real, &sym, sizeof(real)); /* object to function pointer */
        if (real == NULL)
            return -1;
    }
    n = real(fd, buf, len, flags, to, tolen);
    if (n >= 0)
        report(fd);
    return n;
}
