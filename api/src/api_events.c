/*
 * api_events.c: GET /v1/rooms/{room}/events, Server-Sent Events.
 *
 * Each stream is one subscriber: a queue of ready-framed SSE chunks fed by
 * the backend's callback (any thread: the bridge's loop) and drained by
 * libmicrohttpd's content reader (an api worker). When the queue is empty
 * the reader suspends the connection (MHD_suspend_connection from the
 * content reader, the documented way) and the feeder resumes it.
 *
 * Rules that keep this safe:
 *  - sub->suspended is set only by the reader, under sub->lock, in the
 *    same critical section as MHD_suspend_connection; whoever clears it
 *    (under the lock) "claims" the resume and must call
 *    MHD_resume_connection, after dropping every lock. A suspended
 *    connection cannot be closed, so the claimer may still use sub->conn
 *    and the sub itself until that call: no reference counting is needed.
 *  - Lock order: ev->lock, then sub->lock. No MHD call is made under
 *    ev->lock; only MHD_suspend_connection is made under sub->lock.
 *  - The subscriber is freed in the response's free callback, after
 *    unsubscribe (which, by contract, waits for running callbacks).
 *  - The queue is bounded (cfg.sse_queue_max chunks). A subscriber that
 *    falls that far behind gets an "error" event and its stream ends:
 *    dropping one slow reader is better than unbounded memory.
 *  - Every cfg.sse_keepalive_ms a keep-alive comment goes to idle
 *    streams; besides keeping proxies from closing them, it is how a
 *    vanished client is noticed (MHD does not watch suspended sockets).
 */
#include "api_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    API_SSE_BLOCK = 4096,            /* the reader's buffer size */
    API_SSE_TYPE_MAX = 32,           /* longest event name accepted */
};

/* One framed piece of the stream ("event: ...\ndata: ...\n\n"). */
struct api_sse_chunk {
    struct api_sse_chunk *next;
    size_t len;
    char data[];
};

struct api_sub {
    struct api_server *s;            /* read-only */
    struct MHD_Connection *conn;     /* read-only */
    int64_t id;                      /* backend subscription, 0 before */
    pthread_mutex_t lock;            /* guards everything below */
    struct api_sse_chunk *head, *tail;
    size_t head_off;                 /* bytes of head already handed to MHD */
    unsigned queued;                 /* chunks in the queue */
    bool suspended;                  /* see the rules above */
    bool ending;                     /* drain the queue, then end the stream */
    struct api_sub *prev, *next;     /* in ev->subs, under ev->lock */
    struct api_sub *resume_next;     /* private to one resumer at a time */
};

struct api_events {
    pthread_mutex_t lock;            /* guards subs, n_subs, closing */
    pthread_cond_t wake;             /* ends the keep-alive wait early */
    struct api_sub *subs;
    unsigned n_subs;
    bool closing;
    bool thread_started;
    pthread_t thread;
    atomic_uint_fast64_t dropped;    /* subscribers dropped as too slow */
};

static struct api_sse_chunk *chunk_new(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Formats one chunk. NULL when out of memory. */
static struct api_sse_chunk *chunk_new(const char *fmt, ...)
{
    struct api_sse_chunk *c;
    va_list ap, ap2;
    int n;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    c = n < 0 ? NULL : malloc(sizeof(*c) + (size_t)n + 1);
    if (c) {
        c->next = NULL;
        c->len = (size_t)n;
        vsnprintf(c->data, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    va_end(ap);
    return c;
}

/* Thread: any, sub->lock held. */
static void queue_push(struct api_sub *sub, struct api_sse_chunk *c)
{
    if (sub->tail)
        sub->tail->next = c;
    else
        sub->head = c;
    sub->tail = c;
    sub->queued++;
}

/* Frees the queue, except a chunk MHD has started sending (cutting it
 * would break the framing of the stream). Thread: any, sub->lock held. */
static void queue_drop(struct api_sub *sub, bool keep_partial)
{
    struct api_sse_chunk *c = sub->head;

    if (keep_partial && c && sub->head_off > 0) {
        struct api_sse_chunk *rest = c->next;

        c->next = NULL;
        sub->tail = c;
        sub->queued = 1;
        c = rest;
    } else {
        sub->head = sub->tail = NULL;
        sub->head_off = 0;
        sub->queued = 0;
    }
    while (c) {
        struct api_sse_chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* Clears sub->suspended when set, returning whether the caller now owns
 * the resume. Thread: any, sub->lock held. */
static bool claim_resume(struct api_sub *sub)
{
    bool claimed = sub->suspended;

    sub->suspended = false;
    return claimed;
}

/* Event names become an SSE "event:" line: refuse anything that could
 * break the framing. */
static bool type_valid(const char *type)
{
    size_t n = 0;

    if (!type)
        return false;
    for (; type[n]; n++) {
        char c = type[n];
        if (n >= API_SSE_TYPE_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return n > 0;
}

/* The backend's callback. Thread: any (usually the bridge's loop). */
static void sse_event_cb(const char *type, const json_t *data, void *cb_data)
{
    struct api_sub *sub = cb_data;
    struct api_sse_chunk *c;
    char *json;
    bool resume;

    if (!type_valid(type))
        return;
    /* Compact JSON has no raw newline, so one data: line carries it. */
    json = data ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    c = chunk_new("event: %s\ndata: %s\n\n", type, json ? json : "{}");
    free(json);
    if (!c)
        return;     /* out of memory: the event is lost, the stream lives on */

    pthread_mutex_lock(&sub->lock);
    if (sub->ending) {
        pthread_mutex_unlock(&sub->lock);
        free(c);
        return;
    }
    if (sub->queued >= sub->s->cfg.sse_queue_max) {
        free(c);
        queue_drop(sub, true);
        c = chunk_new("event: error\ndata: {\"detail\":\"%s\"}\n\n",
                      "this subscriber fell too far behind; events were dropped and the stream ends");
        if (c)
            queue_push(sub, c);
        sub->ending = true;
        atomic_fetch_add_explicit(&sub->s->events->dropped, 1, memory_order_relaxed);
    } else {
        queue_push(sub, c);
        if (strcmp(type, "destroyed") == 0)
            sub->ending = true;
    }
    resume = claim_resume(sub);
    pthread_mutex_unlock(&sub->lock);
    if (resume)
        MHD_resume_connection(sub->conn);
}

/* MHD's content reader. Thread: api. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct api_sub *sub = cls;
    size_t n = 0;

    pthread_mutex_lock(&sub->lock);
    while (sub->head && n < max) {
        struct api_sse_chunk *c = sub->head;
        size_t take = c->len - sub->head_off;

        if (take > max - n)
            take = max - n;
        memcpy(buf + n, c->data + sub->head_off, take);
        n += take;
        sub->head_off += take;
        if (sub->head_off == c->len) {
            sub->head = c->next;
            if (!sub->head)
                sub->tail = NULL;
            sub->head_off = 0;
            sub->queued--;
            free(c);
        }
    }
    if (n == 0) {
        if (sub->ending) {
            pthread_mutex_unlock(&sub->lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        /* Nothing to send: park the connection until an event, a
         * keep-alive or shutdown resumes it (returning 0 without
         * suspending would spin the worker). */
        sub->suspended = true;
        MHD_suspend_connection(sub->conn);
    }
    pthread_mutex_unlock(&sub->lock);
    return (ssize_t)n;
}

static void sub_unlink(struct api_events *ev, struct api_sub *sub)
{
    pthread_mutex_lock(&ev->lock);
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        ev->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    ev->n_subs--;
    pthread_mutex_unlock(&ev->lock);
}

/* Ends a subscriber: unsubscribes (after which no callback runs) and
 * frees. Also MHD's free callback for the stream's response. */
static void sub_free(void *cls)
{
    struct api_sub *sub = cls;
    struct api_server *s = sub->s;

    sub_unlink(s->events, sub);
    if (sub->id > 0)
        s->be.unsubscribe(s->be.ctx, sub->id);
    queue_drop(sub, false);
    pthread_mutex_destroy(&sub->lock);
    free(sub);
}

/* Allocates a subscriber and links it, unless the server is closing. */
static int sub_new(struct api_server *s, struct api_req *r, struct api_sub **out)
{
    struct api_events *ev = s->events;
    struct api_sub *sub = calloc(1, sizeof(*sub));
    struct api_sse_chunk *hello;

    if (!sub)
        return -ENOMEM;
    hello = chunk_new(": subscribed to %s\n\n", r->room);
    if (!hello) {
        free(sub);
        return -ENOMEM;
    }
    sub->s = s;
    sub->conn = r->conn;
    pthread_mutex_init(&sub->lock, NULL);
    /* A first comment lets the headers and one chunk leave at once, so
     * clients see the stream open before the first event. */
    queue_push(sub, hello);

    pthread_mutex_lock(&ev->lock);
    if (ev->closing) {
        pthread_mutex_unlock(&ev->lock);
        queue_drop(sub, false);
        pthread_mutex_destroy(&sub->lock);
        free(sub);
        return -ESHUTDOWN;
    }
    sub->next = ev->subs;
    if (ev->subs)
        ev->subs->prev = sub;
    ev->subs = sub;
    ev->n_subs++;
    pthread_mutex_unlock(&ev->lock);
    *out = sub;
    return 0;
}

static enum MHD_Result subscribe_failed(struct api_server *s, struct api_req *r, int64_t rc)
{
    if (rc == -ENOENT)
        return api__send_problem(s, r, MHD_HTTP_NOT_FOUND, "no such room", NULL);
    return api__send_problem(s, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "the room's events cannot be followed now", NULL);
}

enum MHD_Result api__events_get(struct api_server *s, struct api_req *r)
{
    struct api_sub *sub = NULL;
    struct MHD_Response *resp;
    int64_t id;
    int rc;

    if (!s->be.subscribe || !s->be.unsubscribe)
        return api__send_problem(s, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "events are not available", NULL);
    rc = sub_new(s, r, &sub);
    if (rc < 0)
        return api__send_problem(s, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 rc == -ENOMEM ? "out of memory" : "the server is stopping",
                                 NULL);
    id = s->be.subscribe(s->be.ctx, r->room, sse_event_cb, sub);
    if (id <= 0) {
        sub_free(sub);
        return subscribe_failed(s, r, id);
    }
    sub->id = id;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, API_SSE_BLOCK, sse_read, sub,
                                             sub_free);
    if (!resp) {
        sub_free(sub);
        return api__send_problem(s, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    /* Tells nginx-style proxies not to buffer the stream. */
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    /* From here the response owns sub: its free callback ends it. */
    return api__send(s, r, MHD_HTTP_OK, resp);
}

/* Queues a keep-alive on every idle stream and resumes the parked ones. */
static void keepalive_round(struct api_events *ev)
{
    struct api_sub *resume = NULL;

    pthread_mutex_lock(&ev->lock);
    for (struct api_sub *sub = ev->subs; sub; sub = sub->next) {
        pthread_mutex_lock(&sub->lock);
        if (!sub->ending && !sub->head) {
            struct api_sse_chunk *c = chunk_new(": keep-alive\n\n");
            if (c)
                queue_push(sub, c);
        }
        if (claim_resume(sub)) {
            sub->resume_next = resume;
            resume = sub;
        }
        pthread_mutex_unlock(&sub->lock);
    }
    pthread_mutex_unlock(&ev->lock);
    while (resume) {
        struct api_sub *next = resume->resume_next;

        /* After this call the sub may be freed at any moment. */
        MHD_resume_connection(resume->conn);
        resume = next;
    }
}

static void *keepalive_main(void *arg)
{
    struct api_server *s = arg;
    struct api_events *ev = s->events;
    struct timespec deadline;

    pthread_mutex_lock(&ev->lock);
    while (!ev->closing) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += s->cfg.sse_keepalive_ms / 1000;
        deadline.tv_nsec += (long)(s->cfg.sse_keepalive_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (!ev->closing &&
               pthread_cond_timedwait(&ev->wake, &ev->lock, &deadline) != ETIMEDOUT)
            ;
        if (ev->closing)
            break;
        pthread_mutex_unlock(&ev->lock);
        keepalive_round(ev);
        pthread_mutex_lock(&ev->lock);
    }
    pthread_mutex_unlock(&ev->lock);
    return NULL;
}

int api__events_start(struct api_server *s)
{
    struct api_events *ev = calloc(1, sizeof(*ev));
    pthread_condattr_t attr;
    int rc;

    if (!ev)
        return -ENOMEM;
    pthread_mutex_init(&ev->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->wake, &attr);
    pthread_condattr_destroy(&attr);
    s->events = ev;
    rc = pthread_create(&ev->thread, NULL, keepalive_main, s);
    if (rc != 0)
        return -rc;
    ev->thread_started = true;
    return 0;
}

void api__events_stop(struct api_server *s)
{
    struct api_events *ev = s->events;
    struct api_sub *resume = NULL;

    if (!ev)
        return;
    pthread_mutex_lock(&ev->lock);
    ev->closing = true;
    for (struct api_sub *sub = ev->subs; sub; sub = sub->next) {
        pthread_mutex_lock(&sub->lock);
        sub->ending = true;
        if (claim_resume(sub)) {
            sub->resume_next = resume;
            resume = sub;
        }
        pthread_mutex_unlock(&sub->lock);
    }
    pthread_cond_broadcast(&ev->wake);
    pthread_mutex_unlock(&ev->lock);
    /* MHD_stop_daemon must not find a suspended connection. */
    while (resume) {
        struct api_sub *next = resume->resume_next;

        MHD_resume_connection(resume->conn);
        resume = next;
    }
    if (ev->thread_started) {
        pthread_join(ev->thread, NULL);
        ev->thread_started = false;
    }
}

void api__events_free(struct api_server *s)
{
    struct api_events *ev = s->events;

    if (!ev)
        return;
    /* MHD_stop_daemon has freed every response, hence every sub. */
    pthread_cond_destroy(&ev->wake);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
    s->events = NULL;
}

unsigned api__events_count(struct api_server *s, uint64_t *dropped)
{
    struct api_events *ev = s->events;
    unsigned n;

    pthread_mutex_lock(&ev->lock);
    n = ev->n_subs;
    pthread_mutex_unlock(&ev->lock);
    *dropped = atomic_load_explicit(&ev->dropped, memory_order_relaxed);
    return n;
}
