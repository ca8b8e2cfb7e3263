/*
 * lg_http.c: see lg_http.h.
 */
#include "lg_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum {
    REQ_HEAD_MAX = 1024,
    READ_CHUNK = 16384,
    RETRY_DEFAULT_MS = 1000,   /* 429 without a usable Retry-After */
};

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                          .tv_nsec = (long)(us % 1000000u) * 1000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int lg_api_parse(struct lg_api *api, const char *url)
{
    const char *h = url, *end, *colon;
    size_t hl;

    memset(api, 0, sizeof(*api));
    if (strncmp(h, "http://", 7) != 0)
        return -EINVAL;
    h += 7;
    end = h + strcspn(h, "/");
    if (*end && strcmp(end, "/") != 0)
        return -EINVAL;  /* a path prefix is not supported */
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return -EINVAL;
        hl = (size_t)(rb - h - 1);
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        h++;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hl = (size_t)((colon ? colon : end) - h);
    }
    if (hl == 0 || hl >= sizeof(api->host))
        return -EINVAL;
    memcpy(api->host, h, hl);
    api->port = 80;
    if (colon) {
        char *e;
        unsigned long p = strtoul(colon + 1, &e, 10);
        if (e != end || p == 0 || p > 65535)
            return -EINVAL;
        api->port = (uint16_t)p;
    }
    return 0;
}

static int connect_api(const struct lg_api *api)
{
    struct sockaddr_storage ss;
    struct timeval tv = {.tv_sec = LG_HTTP_TIMEOUT_MS / 1000};
    socklen_t sl;
    int fd;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, api->host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(api->port);
        sl = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, api->host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(api->port);
        sl = sizeof(struct sockaddr_in6);
    } else {
        return -EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until the server closes. Returns the length or a negative errno;
 * *out is malloc'd and NUL-terminated. */
static ssize_t recv_all(int fd, char **out)
{
    size_t cap = READ_CHUNK, len = 0;
    char *buf = malloc(cap + 1);

    if (!buf)
        return -ENOMEM;
    for (;;) {
        ssize_t n;

        if (cap - len < READ_CHUNK / 2) {
            char *nb;
            if (cap > LG_HTTP_MAX_BODY || !(nb = realloc(buf, cap * 2 + 1))) {
                free(buf);
                return cap > LG_HTTP_MAX_BODY ? -EFBIG : -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        n = recv(fd, buf + len, cap - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -EIO;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    return (ssize_t)len;
}

/* Finds header @name in the header block [h, end) (status line first,
 * lines ending in CRLF); returns its value (not terminated) or NULL. */
static const char *header(const char *h, const char *end, const char *name)
{
    size_t nl = strlen(name);
    const char *line = strstr(h, "\r\n");

    while (line && line < end) {
        line += 2;
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':')
            return line + nl + 1 + strspn(line + nl + 1, " \t");
        line = strstr(line, "\r\n");
    }
    return NULL;
}

/* Decodes a chunked body in place. Returns its length or -EPROTO. */
static ssize_t dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;

    for (;;) {
        char *e;
        unsigned long n = strtoul(b + in, &e, 16);
        char *crlf = strstr(e, "\r\n");

        if (e == b + in || !crlf)
            return -EPROTO;
        in = (size_t)(crlf - b) + 2;
        if (n == 0)
            break;
        if (n > len - in)
            return -EPROTO;
        memmove(b + out, b + in, n);
        out += n;
        in += n + 2;
        if (in > len)
            return -EPROTO;
    }
    b[out] = '\0';
    return (ssize_t)out;
}

/* Splits the raw answer @raw (which @out then owns) into status and body,
 * undoing a chunked transfer coding; *retry_ms from Retry-After. Returns 0
 * or -EPROTO. */
static int parse_answer(char *raw, size_t len, struct lg_http_resp *out, unsigned *retry_ms)
{
    char *hend = strstr(raw, "\r\n\r\n");
    const char *v;
    bool chunked;
    size_t blen;

    if (!hend || sscanf(raw, "HTTP/1.%*d %d", &out->status) != 1)
        return -EPROTO;
    *retry_ms = RETRY_DEFAULT_MS;
    if ((v = header(raw, hend, "Retry-After")) && atoi(v) > 0)
        *retry_ms = (unsigned)atoi(v) * 1000u;
    v = header(raw, hend, "Transfer-Encoding");
    chunked = v && strncasecmp(v, "chunked", 7) == 0;
    blen = len - (size_t)(hend + 4 - raw);
    memmove(raw, hend + 4, blen + 1);
    out->body = raw;
    out->body_len = blen;
    if (chunked) {
        ssize_t n = dechunk(raw, blen);
        if (n < 0)
            return -EPROTO;
        out->body_len = (size_t)n;
    }
    return 0;
}

/* One attempt: connect, send, read. */
static int request_once(struct lg_api *api, const char *method, const char *path,
                        const char *body, struct lg_http_resp *out, unsigned *retry_ms)
{
    char head[REQ_HEAD_MAX], *raw = NULL;
    size_t blen = body ? strlen(body) : 0;
    ssize_t n;
    int fd, rc, hl;

    hl = snprintf(head, sizeof(head),
                  "%s %s HTTP/1.1\r\nHost: %s:%u\r\n%s%s%sConnection: close\r\n",
                  method, path, api->host, api->port, api->token ? "Authorization: Bearer " : "",
                  api->token ? api->token : "", api->token ? "\r\n" : "");
    if (hl < 0 || (size_t)hl >= sizeof(head) - 80)
        return -ENAMETOOLONG;
    hl += snprintf(head + hl, sizeof(head) - (size_t)hl,
                   body ? "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n" : "\r\n",
                   blen);
    if ((fd = connect_api(api)) < 0)
        return fd;
    api->requests++;
    rc = send_all(fd, head, (size_t)hl);
    if (rc == 0 && body)
        rc = send_all(fd, body, blen);
    n = rc == 0 ? recv_all(fd, &raw) : rc;
    close(fd);
    if (n < 0)
        return (int)n;
    rc = parse_answer(raw, (size_t)n, out, retry_ms);
    if (rc) {
        free(raw);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

int lg_http_request(struct lg_api *api, const char *method, const char *path,
                    const char *body, struct lg_http_resp *out)
{
    memset(out, 0, sizeof(*out));
    for (int attempt = 0;; attempt++) {
        uint64_t now = mono_us();
        unsigned retry_ms = 0;
        int rc;

        if (api->last_request_us && now - api->last_request_us < LG_API_MIN_GAP_US)
            sleep_us(LG_API_MIN_GAP_US - (now - api->last_request_us));
        api->last_request_us = mono_us();
        rc = request_once(api, method, path, body, out, &retry_ms);
        if (rc)
            return rc;
        if ((out->status != 429 && out->status != 503) || attempt >= LG_HTTP_RETRIES)
            return 0;
        api->throttled += out->status == 429;
        lg_http_resp_free(out);
        sleep_us((uint64_t)retry_ms * 1000u);
    }
}

void lg_http_resp_free(struct lg_http_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

/* Copies the problem's detail (RFC 9457) or the status into @err. */
static void problem(const struct lg_http_resp *r, const char *what, char *err, size_t errlen)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    const char *d = j ? json_string_value(json_object_get(j, "detail")) : NULL;

    snprintf(err, errlen, "%s: HTTP %d%s%s", what, r->status, d ? ": " : "", d ? d : "");
    json_decref(j);
}

static int room_resize(struct lg_api *api, const char *path, unsigned max_participants,
                       char *err, size_t errlen)
{
    struct lg_http_resp r;
    char body[64];
    int rc;

    snprintf(body, sizeof(body), "{\"max_participants\":%u}", max_participants);
    if ((rc = lg_http_request(api, "PATCH", path, body, &r)) != 0) {
        snprintf(err, errlen, "PATCH %s: %s", path, strerror(-rc));
        return rc;
    }
    if (r.status != 200)
        problem(&r, "cannot resize the room", err, errlen);
    rc = r.status == 200 ? 0 : -EPROTO;
    lg_http_resp_free(&r);
    return rc;
}

int lg_api_room_ensure(struct lg_api *api, const char *room, unsigned max_participants,
                       unsigned talkers, bool *created, char *err, size_t errlen)
{
    char path[128], body[256];
    struct lg_http_resp r;
    json_t *j;
    int rc, have;

    *created = false;
    snprintf(path, sizeof(path), "/v1/rooms/%s", room);
    if ((rc = lg_http_request(api, "GET", path, NULL, &r)) != 0) {
        snprintf(err, errlen, "cannot reach the API at %s:%u: %s", api->host, api->port,
                 strerror(-rc));
        return rc;
    }
    if (r.status == 200) {
        j = json_loadb(r.body, r.body_len, 0, NULL);
        have = j ? (int)json_integer_value(json_object_get(j, "max_participants")) : 0;
        json_decref(j);
        lg_http_resp_free(&r);
        return (unsigned)have >= max_participants ? 0
                                                  : room_resize(api, path, max_participants, err, errlen);
    }
    if (r.status != 404) {
        problem(&r, "GET room", err, errlen);
        lg_http_resp_free(&r);
        return -EPROTO;
    }
    lg_http_resp_free(&r);
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"max_participants\":%u,\"talkers\":%u}", room,
             max_participants, talkers);
    if ((rc = lg_http_request(api, "POST", "/v1/rooms", body, &r)) != 0) {
        snprintf(err, errlen, "POST /v1/rooms: %s", strerror(-rc));
        return rc;
    }
    *created = r.status == 201;
    if (!*created)
        problem(&r, "cannot create the room", err, errlen);
    lg_http_resp_free(&r);
    return *created ? 0 : -EPROTO;
}

int lg_api_room_delete(struct lg_api *api, const char *room)
{
    struct lg_http_resp r;
    char path[128];
    int rc;

    snprintf(path, sizeof(path), "/v1/rooms/%s", room);
    if ((rc = lg_http_request(api, "DELETE", path, NULL, &r)) != 0)
        return rc;
    rc = r.status == 204 || r.status == 404 ? 0 : -EPROTO;
    lg_http_resp_free(&r);
    return rc;
}

int lg_api_participant_add(struct lg_api *api, const char *room, const char *remote_ip,
                           uint16_t remote_port, uint32_t *id, uint16_t *local_port,
                           char *err, size_t errlen)
{
    char path[160], body[160];
    struct lg_http_resp r;
    json_t *j;
    int rc;

    snprintf(path, sizeof(path), "/v1/rooms/%s/participants", room);
    snprintf(body, sizeof(body),
             "{\"codec\":\"opus\",\"remote\":\"%s%s%s:%u\",\"display_name\":\"lg\"}",
             strchr(remote_ip, ':') ? "[" : "", remote_ip, strchr(remote_ip, ':') ? "]" : "",
             remote_port);
    if ((rc = lg_http_request(api, "POST", path, body, &r)) != 0) {
        snprintf(err, errlen, "POST %s: %s", path, strerror(-rc));
        return rc;
    }
    if (r.status != 201) {
        problem(&r, "cannot add a plain RTP leg", err, errlen);
        lg_http_resp_free(&r);
        return -EPROTO;
    }
    j = json_loadb(r.body, r.body_len, 0, NULL);
    *id = j ? (uint32_t)json_integer_value(json_object_get(j, "id")) : 0;
    *local_port = j ? (uint16_t)json_integer_value(json_object_get(j, "local_port")) : 0;
    json_decref(j);
    lg_http_resp_free(&r);
    if (*id == 0 || *local_port == 0) {
        snprintf(err, errlen, "the answer to POST %s has no id or local_port", path);
        return -EPROTO;
    }
    return 0;
}

int lg_api_participant_delete(struct lg_api *api, const char *room, uint32_t id)
{
    struct lg_http_resp r;
    char path[160];
    int rc;

    snprintf(path, sizeof(path), "/v1/rooms/%s/participants/%u", room, id);
    if ((rc = lg_http_request(api, "DELETE", path, NULL, &r)) != 0)
        return rc;
    rc = r.status == 204 || r.status == 404 ? 0 : -EPROTO;
    lg_http_resp_free(&r);
    return rc;
}

/* The value of the unlabelled series @name in a Prometheus text body, or 0
 * when absent. */
static double series(const char *body, const char *name)
{
    size_t nl = strlen(name);

    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
            return strtod(p + nl + 1, NULL);
    }
    return 0;
}

void lg_api_metrics(struct lg_api *api, struct lg_metrics *m)
{
    struct lg_http_resp r;

    memset(m, 0, sizeof(*m));
    if (lg_http_request(api, "GET", "/metrics", NULL, &r) != 0)
        return;
    if (r.status == 200) {
        m->ok = true;
        m->missed_deadlines = series(r.body, "chorus_mixer_missed_deadlines_total");
        m->cycles = series(r.body, "chorus_mixer_cycles_total");
        m->max_cycle_us = series(r.body, "chorus_mixer_max_cycle_microseconds");
        m->rx_packets = series(r.body, "chorus_rx_packets_total");
        m->tx_packets = series(r.body, "chorus_tx_packets_total");
        m->tx_errors = series(r.body, "chorus_tx_errors_total");
        m->rx_invalid = series(r.body, "chorus_rx_invalid_total");
        m->rx_unknown = series(r.body, "chorus_rx_unknown_total");
        m->lost = series(r.body, "chorus_lost_packets_total");
        m->late = series(r.body, "chorus_late_packets_total");
        m->concealed = series(r.body, "chorus_concealed_frames_total");
        m->handshakes_ok = series(r.body, "chorus_handshakes_total");
        m->handshakes_failed = series(r.body, "chorus_handshakes_failed_total");
        m->encodes = series(r.body, "chorus_mixer_encodes_total");
        m->legs = series(r.body, "chorus_legs");
    }
    lg_http_resp_free(&r);
}
