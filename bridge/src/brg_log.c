/*
 * brg_log.c: levelled, topic-filtered, rate-limited logging (brg_log.h).
 *
 * State: one spec (default level + topic entries) under a mutex, and a
 * generation counter bumped on every change. Call sites cache their
 * topic's threshold together with the generation it was computed for; a
 * changed generation makes the next use recompute it under the mutex.
 *
 * A line is formatted into a stack buffer outside the lock, then emitted
 * with the lock held so lines of different threads never interleave.
 */
#include "brg_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    TIME_BUF = 64,              /* room for any int the compiler imagines */
    REASON_MAX = 160,           /* parse error text */
};

struct topic_level {
    char topic[BRG_LOG_TOPIC_MAX];
    size_t len;
    int level;
};

struct spec {
    int def;                                  /* default threshold */
    size_t n;                                 /* entries in topics[] */
    struct topic_level topics[BRG_LOG_TOPICS_MAX];
};

atomic_uint brg_log__gen = 1;   /* 0 is "never computed" in call sites */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spec cur = { .def = BRG_LOG_INFO };   /* under log_lock */
static brg_log_sink_cb sink;                        /* under log_lock */
static void *sink_data;
static brg_log_clock_cb clock_cb;                   /* under log_lock */
static void *clock_data;
static uint32_t rl_burst = BRG_LOG_RATELIMIT_BURST;  /* under log_lock */
static uint32_t rl_interval = BRG_LOG_RATELIMIT_INTERVAL_MS;

static const char *const level_names[] = {
    [BRG_LOG_OFF] = "off",   [BRG_LOG_ERROR] = "error",
    [BRG_LOG_WARN] = "warn", [BRG_LOG_INFO] = "info",
    [BRG_LOG_DEBUG] = "debug", [BRG_LOG_TRACE] = "trace",
};

/* Column text of each level in a line: fixed width 5. */
static const char *const level_tags[] = {
    [BRG_LOG_OFF] = "OFF  ",  [BRG_LOG_ERROR] = "ERROR",
    [BRG_LOG_WARN] = "WARN ", [BRG_LOG_INFO] = "INFO ",
    [BRG_LOG_DEBUG] = "DEBUG", [BRG_LOG_TRACE] = "TRACE",
};

/* Returns the level named @name, or -EINVAL. */
int brg_log_level_parse(const char *name)
{
    if (!name)
        return -EINVAL;
    for (int i = BRG_LOG_OFF; i <= BRG_LOG_TRACE; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return BRG_LOG_WARN;
    return -EINVAL;
}

/* Returns the name of @level ("?" when out of range). */
const char *brg_log_level_name(enum brg_log_level level)
{
    if ((unsigned)level > BRG_LOG_TRACE)
        return "?";
    return level_names[level];
}

/* True when @c may appear in a topic name. */
static bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Parses one trimmed entry @e of @n bytes ("level" or "topic=level") into
 * @sp. Returns 0 or -EINVAL with @why filled. */
static int parse_entry(struct spec *sp, const char *e, size_t n,
                       char *why, size_t whylen)
{
    const char *eq = memchr(e, '=', n);
    size_t tlen = eq ? (size_t)(eq - e) : 0;
    const char *lv = eq ? eq + 1 : e;
    size_t lvlen = n - (size_t)(lv - e);
    char name[16];
    int level;

    if (lvlen == 0 || lvlen >= sizeof(name)) {
        snprintf(why, whylen, "bad level in '%.*s'", (int)n, e);
        return -EINVAL;
    }
    memcpy(name, lv, lvlen);
    name[lvlen] = '\0';
    level = brg_log_level_parse(name);
    if (level < 0) {
        snprintf(why, whylen, "unknown level '%s' in '%.*s'", name, (int)n, e);
        return -EINVAL;
    }
    if (!eq) {
        sp->def = level;
        return 0;
    }
    for (size_t i = 0; i < tlen; i++) {
        if (!topic_char(e[i])) {
            snprintf(why, whylen, "bad topic in '%.*s'", (int)n, e);
            return -EINVAL;
        }
    }
    if (tlen == 0 || tlen >= BRG_LOG_TOPIC_MAX) {
        snprintf(why, whylen, "bad topic in '%.*s'", (int)n, e);
        return -EINVAL;
    }
    if (sp->n == BRG_LOG_TOPICS_MAX) {
        snprintf(why, whylen, "more than %d topics", BRG_LOG_TOPICS_MAX);
        return -EINVAL;
    }
    memcpy(sp->topics[sp->n].topic, e, tlen);
    sp->topics[sp->n].topic[tlen] = '\0';
    sp->topics[sp->n].len = tlen;
    sp->topics[sp->n].level = level;
    sp->n++;
    return 0;
}

/* Parses the comma-separated @s into @sp (which keeps its default when @s
 * has no bare level). Returns 0 or -EINVAL with @why filled. */
static int parse_spec(struct spec *sp, const char *s, char *why, size_t whylen)
{
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *e = s;
        int rc;

        while (n && (*e == ' ' || *e == '\t')) {
            e++;
            n--;
        }
        while (n && (e[n - 1] == ' ' || e[n - 1] == '\t'))
            n--;
        if (n) {
            rc = parse_entry(sp, e, n, why, whylen);
            if (rc < 0)
                return rc;
        }
        s = end ? end + 1 : NULL;
    }
    return 0;
}

/* Checks a spec; see brg_log.h. */
int brg_log_spec_check(const char *spec, char *why, size_t whylen)
{
    struct spec sp = { .def = BRG_LOG_INFO };
    char reason[REASON_MAX];
    int rc = parse_spec(&sp, spec, reason, sizeof(reason));

    if (rc < 0 && why)
        snprintf(why, whylen, "is not a log spec: %s", reason);
    return rc;
}

/* Applies a default level and a spec; see brg_log.h. */
int brg_log_configure(const char *level, const char *spec,
                      char *err, size_t errlen)
{
    struct spec sp = { .def = BRG_LOG_INFO };
    char reason[REASON_MAX];
    unsigned g;

    if (level && level[0]) {
        sp.def = brg_log_level_parse(level);
        if (sp.def < 0) {
            if (err)
                snprintf(err, errlen, "log level: unknown level '%s'", level);
            return -EINVAL;
        }
    }
    if (parse_spec(&sp, spec, reason, sizeof(reason)) < 0) {
        if (err)
            snprintf(err, errlen, "log: %s", reason);
        return -EINVAL;
    }
    pthread_mutex_lock(&log_lock);
    cur = sp;
    g = atomic_load(&brg_log__gen) + 1;
    atomic_store(&brg_log__gen, g ? g : 1);
    pthread_mutex_unlock(&log_lock);
    return 0;
}

/* Threshold of @topic in @sp: the longest entry equal to the topic or to
 * a dotted prefix of it, else the default. */
static int lookup(const struct spec *sp, const char *topic)
{
    size_t best = 0;
    int level = sp->def;

    for (size_t i = 0; i < sp->n; i++) {
        const struct topic_level *t = &sp->topics[i];

        if (t->len > best && strncmp(topic, t->topic, t->len) == 0 &&
            (topic[t->len] == '\0' || topic[t->len] == '.')) {
            best = t->len;
            level = t->level;
        }
    }
    return level;
}

/* Recomputes a call site's cached threshold; returns it. */
int brg_log__site_refresh(struct brg_log_site *site)
{
    int level;

    pthread_mutex_lock(&log_lock);
    level = lookup(&cur, site->topic);
    atomic_store_explicit(&site->level, level, memory_order_relaxed);
    atomic_store_explicit(&site->gen, atomic_load(&brg_log__gen),
                          memory_order_release);
    pthread_mutex_unlock(&log_lock);
    return level;
}

/* True when @topic logs at @level; see brg_log.h. */
bool brg_log_enabled(const char *topic, enum brg_log_level level)
{
    int threshold;

    pthread_mutex_lock(&log_lock);
    threshold = lookup(&cur, topic);
    pthread_mutex_unlock(&log_lock);
    return (int)level <= threshold && level != BRG_LOG_OFF;
}

/* Sets the sink; see brg_log.h. */
void brg_log_set_sink(brg_log_sink_cb cb, void *data)
{
    pthread_mutex_lock(&log_lock);
    sink = cb;
    sink_data = data;
    pthread_mutex_unlock(&log_lock);
}

/* Sets the rate limiter clock; see brg_log.h. */
void brg_log_set_clock(brg_log_clock_cb cb, void *data)
{
    pthread_mutex_lock(&log_lock);
    clock_cb = cb;
    clock_data = data;
    pthread_mutex_unlock(&log_lock);
}

/* Sets the rate limit; see brg_log.h. */
void brg_log_set_ratelimit(uint32_t burst, uint32_t interval_ms)
{
    pthread_mutex_lock(&log_lock);
    rl_burst = burst;
    rl_interval = interval_ms;
    pthread_mutex_unlock(&log_lock);
}

/* Milliseconds of the rate limiter clock. Called with log_lock held. */
static uint64_t now_ms_locked(void)
{
    struct timespec ts;

    if (clock_cb)
        return clock_cb(clock_data);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes "2024-05-01T12:34:56.789Z" (UTC) into @buf (TIME_BUF bytes). */
static void iso_time(char *buf)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, TIME_BUF, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (ts.tv_nsec / 1000000) % 1000);
}

/* Writes all of @line to stderr, retrying on EINTR and short writes. */
static void write_stderr(const char *line, size_t len)
{
    while (len) {
        ssize_t n = write(STDERR_FILENO, line, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;     /* nowhere to report a logging failure */
        line += n;
        len -= (size_t)n;
    }
}

/* Builds the full line for @msg and hands it to the sink. Called with
 * log_lock held. */
static void emit_locked(enum brg_log_level level, const char *topic,
                        const char *msg)
{
    char line[BRG_LOG_LINE_MAX];
    char ts[TIME_BUF];
    unsigned lv = (unsigned)level > BRG_LOG_TRACE ? BRG_LOG_ERROR : level;
    int n;

    iso_time(ts);
    n = snprintf(line, sizeof(line), "%s %s %s: %s\n", ts, level_tags[lv],
                 topic, msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {    /* cut: keep the newline */
        memcpy(line + sizeof(line) - 5, "...\n", 5);
        n = (int)sizeof(line) - 1;
    }
    if (sink)
        sink(level, topic, line, sink_data);
    else
        write_stderr(line, (size_t)n);
}

/* Replaces control characters (a peer's newline, escape sequences) with
 * '?' so that one event stays one clean line. Tabs are kept. */
static void sanitize(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            *s = '?';
    }
}

/* Formats and writes one line; see brg_log.h. errno is preserved so that
 * logging an error does not change it for the caller. */
void brg_log_write(enum brg_log_level level, const char *topic,
                   const char *fmt, ...)
{
    char msg[BRG_LOG_LINE_MAX];
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sanitize(msg);
    pthread_mutex_lock(&log_lock);
    emit_locked(level, topic, msg);
    pthread_mutex_unlock(&log_lock);
    errno = saved;
}

/* Decides whether a rate-limited call site may log now. Opening a new
 * window first reports what the previous windows suppressed. */
bool brg_log__ratelimit_pass(struct brg_log_site *site,
                             enum brg_log_level level)
{
    struct brg_log_ratelimit *rl = &site->rl;
    bool pass;
    uint64_t now;

    pthread_mutex_lock(&log_lock);
    now = now_ms_locked();
    if (!rl->started || now - rl->window_start >= rl_interval) {
        if (rl->suppressed) {
            char msg[64];

            snprintf(msg, sizeof(msg), "suppressed %llu messages",
                     (unsigned long long)rl->suppressed);
            emit_locked(level, site->topic, msg);
        }
        rl->started = true;
        rl->window_start = now;
        rl->passed = 0;
        rl->suppressed = 0;
    }
    pass = rl->passed < rl_burst;
    if (pass)
        rl->passed++;
    else
        rl->suppressed++;
    pthread_mutex_unlock(&log_lock);
    return pass;
}
