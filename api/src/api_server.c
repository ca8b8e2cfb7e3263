/*
 * api_server.c: the HTTP server. libmicrohttpd setup and limits, body
 * accumulation, bearer-token authentication, the per-IP rate limit, and
 * the order in which a request is checked:
 *
 *   rate limit (429) -> token (401) -> route (404) -> method (405)
 *   -> Content-Type (415) -> body size (413) -> JSON (400)
 *   -> schema (422) -> handler (backend: its own status)
 *
 * /v1/health skips the first two: probes must neither need the token nor
 * be starved by the limit. Unauthenticated clients learn nothing about
 * which paths exist, since the token is checked before the route.
 *
 * Threading: an internal polling thread pool
 * (MHD_USE_INTERNAL_POLLING_THREAD + MHD_OPTION_THREAD_POOL_SIZE, epoll
 * via MHD_USE_AUTO) with MHD_ALLOW_SUSPEND_RESUME. Not thread-per-connection: an SSE stream
 * would then pin a thread for its whole life, and suspend/resume (which
 * parks idle streams at no cost) is not available in that mode. A pool
 * of a few workers rather than one, because backend calls may block for a
 * bounded time and should not stall /v1/health or other clients.
 */
#include "api_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

enum {
    API_OPENAPI_FILE_MAX = 4 << 20,  /* refuse absurd documents at start */
};

/* ------------------------------------------------------------------ */
/* Rate limit: one token bucket per client IP.                          */
/* ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The bucket key of a client address: IPv4 as v4-mapped IPv6; IPv6 cut
 * to its /64, because one host usually owns a whole /64 and could
 * otherwise spread requests over 2^64 buckets. */
static bool addr_key(const struct sockaddr *sa, unsigned char key[16])
{
    memset(key, 0, 16);
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

        key[10] = key[11] = 0xFF;
        memcpy(key + 12, &in->sin_addr, 4);
        return true;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

        memcpy(key, &in6->sin6_addr, 8);
        return true;
    }
    return false;
}

static uint32_t key_hash(const unsigned char key[16])
{
    uint32_t h = 2166136261u;   /* FNV-1a */

    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h;
}

/* Finds the bucket for @key, or takes over an unused or the stalest slot
 * of its probe window (a reset bucket is full, so an evicted client only
 * gains; the table never grows). Rate lock held. */
static struct api_rate_slot *rate_slot(struct api_server *s, const unsigned char key[16])
{
    uint32_t h = key_hash(key);
    struct api_rate_slot *victim = NULL;

    for (unsigned i = 0; i < API_RATE_PROBE; i++) {
        struct api_rate_slot *sl = &s->rate[(h + i) % API_RATE_SLOTS];

        if (sl->used && memcmp(sl->addr, key, 16) == 0)
            return sl;
        /* The first unused slot, else the least recently used one. */
        if (!victim || (victim->used && (!sl->used || sl->last_ns < victim->last_ns)))
            victim = sl;
    }
    memcpy(victim->addr, key, 16);
    victim->used = true;
    victim->tokens = s->cfg.rate_burst;
    victim->last_ns = now_ns();
    return victim;
}

/* Takes one token for the client at @sa. Returns 0 when the request may
 * go on, else the whole seconds until a token is due (for Retry-After). */
static unsigned rate_take(struct api_server *s, const struct sockaddr *sa)
{
    unsigned char key[16];
    struct api_rate_slot *sl;
    unsigned wait = 0;
    uint64_t now;

    if (s->cfg.rate_per_s == API_RATE_UNLIMITED || !addr_key(sa, key))
        return 0;
    now = now_ns();
    pthread_mutex_lock(&s->rate_lock);
    sl = rate_slot(s, key);
    sl->tokens += (double)(now - sl->last_ns) * 1e-9 * s->cfg.rate_per_s;
    if (sl->tokens > s->cfg.rate_burst)
        sl->tokens = s->cfg.rate_burst;
    sl->last_ns = now;
    if (sl->tokens >= 1.0)
        sl->tokens -= 1.0;
    else
        wait = (unsigned)ceil((1.0 - sl->tokens) / s->cfg.rate_per_s);
    pthread_mutex_unlock(&s->rate_lock);
    if (wait)
        atomic_fetch_add_explicit(&s->rate_limited, 1, memory_order_relaxed);
    return wait;
}

/* ------------------------------------------------------------------ */
/* Authentication.                                                      */
/* ------------------------------------------------------------------ */

enum auth_result { AUTH_OK, AUTH_MISSING, AUTH_BAD };

/* Checks "Authorization: Bearer <token>". The presented token and the
 * configured one are both hashed (BLAKE2b-256) and the digests compared
 * with sodium_memcmp: the comparison takes the same time whatever the
 * inputs, and since digests have a fixed length, neither an early exit
 * nor a length check can reveal the secret's length. */
static enum auth_result auth_check(struct api_server *s, struct MHD_Connection *conn)
{
    unsigned char digest[API_TOKEN_HASH_LEN];
    const char *h;
    size_t len;
    int eq;

    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h)
        return AUTH_MISSING;
    /* RFC 6750 2.1: the scheme is case-insensitive, then one or more
     * spaces, then the token. */
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return AUTH_BAD;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    len = strlen(h);
    while (len && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    crypto_generichash(digest, sizeof(digest), (const unsigned char *)h, len, NULL, 0);
    eq = sodium_memcmp(digest, s->token_hash, sizeof(digest));
    sodium_memzero(digest, sizeof(digest));
    return eq == 0 ? AUTH_OK : AUTH_BAD;
}

/* ------------------------------------------------------------------ */
/* Request handling.                                                    */
/* ------------------------------------------------------------------ */

static bool header_present(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name) != NULL;
}

/* The declared body length, or -1 when none was declared. */
static long long content_length(struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;
    long long n;

    if (!v)
        return -1;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || end == v || n < 0)
        return -1;
    return n;
}

/* Sends @resp once the request is complete: at the last call, after any
 * body has been read and discarded. Answering on the first call would
 * make MHD close the connection (even for a GET, losing keep-alive), and
 * with body bytes still unread the kernel's reset can destroy the answer
 * before the client reads it. Two cases are answered at once, closing
 * the connection: a client waiting for "100 Continue" (it has sent no
 * body yet, and now never will), and a body too long to be worth
 * reading. */
static enum MHD_Result reject(struct api_server *s, struct api_req *r, unsigned status,
                              struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    if (header_present(r->conn, MHD_HTTP_HEADER_EXPECT) ||
        content_length(r->conn) > API_DRAIN_MAX)
        return api__send(s, r, status, resp);
    r->deferred = resp;
    r->deferred_status = status;
    return MHD_YES;
}

static enum MHD_Result reject_problem(struct api_server *s, struct api_req *r, unsigned status,
                                      const char *detail, const char *hname, const char *hval)
{
    struct MHD_Response *resp = api__problem_new(status, detail, NULL);

    if (resp && hname && MHD_add_response_header(resp, hname, hval) != MHD_YES) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return reject(s, r, status, resp);
}

/* True when the Content-Type is application/json, parameters allowed. */
static bool content_type_json(struct MHD_Connection *conn)
{
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = sizeof("application/json") - 1;

    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static enum MHD_Result check_auth(struct api_server *s, struct api_req *r)
{
    const union MHD_ConnectionInfo *ci;
    unsigned wait;
    char secs[16];

    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    wait = rate_take(s, ci ? ci->client_addr : NULL);
    if (wait) {
        snprintf(secs, sizeof(secs), "%u", wait);
        return reject_problem(s, r, MHD_HTTP_TOO_MANY_REQUESTS,
                              "too many requests from this address; retry later",
                              MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    switch (auth_check(s, r->conn)) {
    case AUTH_OK:
        return MHD_YES;
    case AUTH_MISSING:
        return reject_problem(s, r, MHD_HTTP_UNAUTHORIZED, "a bearer token is required",
                              MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"chorus\"");
    case AUTH_BAD:
        break;
    }
    return reject_problem(s, r, MHD_HTTP_UNAUTHORIZED, "the bearer token is not valid",
                          MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                          "Bearer realm=\"chorus\", error=\"invalid_token\"");
}

/* First call for a request: everything decided from the request line and
 * headers. Returns with a response queued or deferred (r->answered or
 * r->deferred), or with r->route set to go on with the body. */
static enum MHD_Result on_headers(struct api_server *s, struct api_req *r, const char *url,
                                  const char *method)
{
    struct api_match m;
    char limit[64];
    enum MHD_Result ret;
    int rc = api__route_match(method, url, &m);

    if (!(rc == 0 && (m.route->flags & API_ROUTE_PUBLIC))) {
        ret = check_auth(s, r);
        if (ret != MHD_YES || r->answered || r->deferred)
            return ret;
    }
    if (rc == -ENOENT)
        return reject_problem(s, r, MHD_HTTP_NOT_FOUND, "no such resource", NULL, NULL);
    if (rc == -EPERM)
        return reject_problem(s, r, MHD_HTTP_METHOD_NOT_ALLOWED,
                              "this method is not allowed on this resource",
                              MHD_HTTP_HEADER_ALLOW, m.allow);
    if ((m.route->flags & API_ROUTE_BODY) && !content_type_json(r->conn))
        return reject_problem(s, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                              "the body must be application/json", NULL, NULL);
    if (content_length(r->conn) > (long long)s->cfg.max_body) {
        snprintf(limit, sizeof(limit), "the body must not exceed %zu bytes", s->cfg.max_body);
        return reject_problem(s, r, MHD_HTTP_CONTENT_TOO_LARGE, limit, NULL, NULL);
    }
    r->route = m.route;
    memcpy(r->room, m.room, sizeof(r->room));
    r->participant = m.participant;
    return MHD_YES;
}

/* Keeps body bytes for routes that take a body, up to cfg.max_body;
 * everything else is read and dropped. */
static void on_body(struct api_server *s, struct api_req *r, const char *data, size_t n)
{
    size_t cap;
    char *nb;

    if (r->deferred || !r->route || !(r->route->flags & API_ROUTE_BODY) || r->body_too_large)
        return;
    if (n > s->cfg.max_body - r->body_len) {
        r->body_too_large = true;
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
        return;
    }
    cap = r->body_len + n;
    nb = realloc(r->body, cap);
    if (!nb) {
        /* Treated as too large: the client gets a 413 instead of a 5xx,
         * which is close enough for a failure that should not happen. */
        r->body_too_large = true;
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
        return;
    }
    memcpy(nb + r->body_len, data, n);
    r->body = nb;
    r->body_len = cap;
}

/* Parses and validates the body of a body-taking route into r->json. */
static enum MHD_Result validate_body(struct api_server *s, struct api_req *r)
{
    struct api_schema_error err;
    json_error_t jerr;
    json_t *doc;
    char detail[API_DETAIL_MAX + 32];
    int rc;

    if (r->body_len == 0)
        return api__send_problem(s, r, MHD_HTTP_BAD_REQUEST, "a JSON body is required", NULL);
    doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(detail, sizeof(detail), "malformed JSON at line %d, column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        return api__send_problem(s, r, MHD_HTTP_BAD_REQUEST, detail, NULL);
    }
    rc = api__schema_check(r->route->schema, doc, &r->json, &err);
    json_decref(doc);
    if (rc == -EBADMSG)
        return api__send_problem(s, r, MHD_HTTP_BAD_REQUEST, err.detail, NULL);
    if (rc == -EINVAL)
        return api__send_problem(s, r, MHD_HTTP_UNPROCESSABLE_CONTENT, err.detail, err.field);
    if (rc < 0)
        return api__send_problem(s, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    return MHD_YES;
}

/* Last call: the whole body is in. */
static enum MHD_Result on_complete(struct api_server *s, struct api_req *r)
{
    enum MHD_Result ret;
    char limit[64];

    if (r->deferred) {
        struct MHD_Response *resp = r->deferred;

        r->deferred = NULL;
        return api__send(s, r, r->deferred_status, resp);
    }
    if (r->body_too_large) {
        snprintf(limit, sizeof(limit), "the body must not exceed %zu bytes", s->cfg.max_body);
        return api__send_problem(s, r, MHD_HTTP_CONTENT_TOO_LARGE, limit, NULL);
    }
    if (r->route->flags & API_ROUTE_BODY) {
        ret = validate_body(s, r);
        if (ret != MHD_YES || r->answered)
            return ret;
    }
    if (atomic_load(&s->stopping))
        return api__send_problem(s, r, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is stopping",
                                 NULL);
    return r->route->handle(s, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct api_server *s = cls;
    struct api_req *r = *con_cls;

    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->conn = conn;
        *con_cls = r;
        return on_headers(s, r, url, method);
    }
    if (*upload_size) {
        on_body(s, r, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->answered)
        return MHD_YES;
    return on_complete(s, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_req *r = *con_cls;

    if (!r)
        return;
    if (r->deferred)
        MHD_destroy_response(r->deferred);
    json_decref(r->json);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

void api__backend_call(struct api_server *s, struct api_req *r, struct api_result *res)
{
    struct api_call call = {
        .op = r->route->op,
        .room = r->room[0] ? r->room : NULL,
        .participant = r->participant,
        .body = r->json,
    };

    memset(res, 0, sizeof(*res));
    s->be.call(s->be.ctx, &call, res);
}

/* ------------------------------------------------------------------ */
/* Start and stop.                                                      */
/* ------------------------------------------------------------------ */

static void apply_defaults(struct api_config *c)
{
    if (!c->bind_addr)
        c->bind_addr = "127.0.0.1";
    if (!c->max_body)
        c->max_body = API_DEFAULT_MAX_BODY;
    if (!c->max_connections)
        c->max_connections = API_DEFAULT_MAX_CONNECTIONS;
    if (!c->timeout_s)
        c->timeout_s = API_DEFAULT_TIMEOUT_S;
    if (!c->per_ip_connections)
        c->per_ip_connections = API_DEFAULT_PER_IP;
    if (!c->rate_per_s)
        c->rate_per_s = API_DEFAULT_RATE_PER_S;
    if (!c->rate_burst)
        c->rate_burst = API_DEFAULT_RATE_BURST;
    if (!c->threads)
        c->threads = API_DEFAULT_THREADS;
    if (c->threads > API_MAX_THREADS)
        c->threads = API_MAX_THREADS;
    if (!c->sse_keepalive_ms)
        c->sse_keepalive_ms = API_DEFAULT_KEEPALIVE_MS;
    if (!c->sse_queue_max)
        c->sse_queue_max = API_DEFAULT_SSE_QUEUE;
}

/* Reads the OpenAPI document at @path once, at start. */
static int openapi_load(struct api_server *s, const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    int rc = 0;

    if (!f)
        return -errno;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = -EIO;
        goto out_close;
    }
    if (n > API_OPENAPI_FILE_MAX) {
        rc = -EFBIG;
        goto out_close;
    }
    buf = malloc((size_t)n + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out_close;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        rc = -EIO;
        goto out_close;
    }
    buf[n] = '\0';
    s->openapi_owned = buf;
    s->openapi = buf;
    s->openapi_len = (size_t)n;

out_close:
    fclose(f);
    return rc;
}

static int daemon_start(struct api_server *s)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    const struct sockaddr *sa;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME;

    memset(&in4, 0, sizeof(in4));
    memset(&in6, 0, sizeof(in6));
    if (inet_pton(AF_INET, s->cfg.bind_addr, &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        in4.sin_port = htons(s->cfg.port);
        sa = (const struct sockaddr *)&in4;
    } else if (inet_pton(AF_INET6, s->cfg.bind_addr, &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(s->cfg.port);
        sa = (const struct sockaddr *)&in6;
        flags |= MHD_USE_IPv6;
    } else {
        return -EINVAL;
    }
    errno = 0;
    s->daemon = MHD_start_daemon(
        flags, s->cfg.port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->cfg.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)s->cfg.per_ip_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->cfg.timeout_s,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->cfg.threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_END);
    if (!s->daemon)
        return errno ? -errno : -EIO;
    info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg.port;
    return 0;
}

int api_server_start(const struct api_config *cfg, const struct api_backend *be,
                     struct api_server **out)
{
    struct api_server *s;
    int rc;

    *out = NULL;
    if (!cfg || !be || !be->call || !cfg->token || !cfg->token[0] ||
        (!be->subscribe != !be->unsubscribe))
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    s->be = *be;
    apply_defaults(&s->cfg);
    crypto_generichash(s->token_hash, sizeof(s->token_hash),
                       (const unsigned char *)cfg->token, strlen(cfg->token), NULL, 0);
    /* Neither the token nor the caller's strings are kept. */
    s->cfg.token = NULL;
    s->cfg.openapi_path = NULL;
    pthread_mutex_init(&s->rate_lock, NULL);
    if (cfg->openapi_path) {
        rc = openapi_load(s, cfg->openapi_path);
        if (rc < 0)
            goto out_free;
    } else {
        s->openapi = (const char *)api__openapi_doc;
        s->openapi_len = api__openapi_doc_len;
    }
    rc = api__events_start(s);
    if (rc < 0)
        goto out_free;
    rc = daemon_start(s);
    s->cfg.bind_addr = NULL;
    if (rc < 0)
        goto out_free;
    *out = s;
    return 0;

out_free:
    api_server_stop(s);
    return rc;
}

uint16_t api_server_port(const struct api_server *s)
{
    return s->port;
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    /* Streams first: MHD_stop_daemon must find no suspended connection. */
    api__events_stop(s);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    api__events_free(s);
    pthread_mutex_destroy(&s->rate_lock);
    free(s->openapi_owned);
    sodium_memzero(s->token_hash, sizeof(s->token_hash));
    free(s);
}
