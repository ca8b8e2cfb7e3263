/*
 * brg_log.h: levelled, topic-filtered logging for the bridge.
 *
 * Levels: error, warn, info, debug, trace (and "off"). Topics are dotted
 * names ("bridge.udp", "bridge.api", "mix.rt", "ovl.handshake"). One spec
 * string sets the levels: a bare level is the default, "topic=level" sets a
 * topic and everything under it ("bridge=debug" covers "bridge.udp"); the
 * longest matching topic wins. Example: "info,bridge.udp=debug,ovl=warn".
 * The bridge builds it from its log_level and log options (CHORUS_LOG):
 * brg_log_configure(cfg.log_level, cfg.log, ...).
 *
 * Output: one line per event, written with a single write(2) to stderr (or
 * to a sink set by brg_log_set_sink):
 *
 *     2024-05-01T12:34:56.789Z WARN  bridge.udp: leg 7: bad RTP (too short)
 *
 * Control characters in the message (a peer's string, a newline) are
 * replaced with '?', so one event is always one line. Long messages are
 * cut at BRG_LOG_LINE_MAX bytes.
 *
 * The macros test the level before evaluating any argument or formatting,
 * through a small cache per call site (refreshed when the spec changes):
 * a disabled debug line costs two relaxed atomic loads.
 *
 * Rate limiting: use BRG_LOG_RATELIMITED for anything a network peer can
 * trigger. Each call site lets BRG_LOG_RATELIMIT_BURST lines through per
 * BRG_LOG_RATELIMIT_INTERVAL_MS window (brg_log_set_ratelimit changes it);
 * the rest are counted, and the first line let through in a later window
 * is preceded by "<topic>: suppressed K messages".
 *
 * Thread: any (the loop and the API threads). Lines from several threads
 * never interleave. NOT for the real-time mixer thread: it formats, locks
 * and writes. Topics must be string literals (the call-site cache is a
 * static object initialised with them).
 *
 * Usage:
 *
 *     char err[128];
 *     if (brg_log_configure(cfg.log_level, cfg.log, err, sizeof err) < 0)
 *         ...;                                  // err names the bad part
 *     BRG_LOGI("bridge.api", "listening on %s:%d", cfg.api_addr, cfg.api_port);
 *     BRG_LOGD("bridge.udp", "leg %u: ssrc %08x", id, ssrc);
 *     BRG_LOG_RATELIMITED("bridge.udp", BRG_LOG_WARN,
 *                         "bad RTP from %s: %s", peer, brg_rtp_result_str(r));
 *     if (brg_log_enabled("bridge.udp", BRG_LOG_TRACE))
 *         ...;                                  // build an expensive dump
 */
#ifndef BRG_LOG_H
#define BRG_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum brg_log_level {
    BRG_LOG_OFF = 0,    /* only as a threshold: nothing */
    BRG_LOG_ERROR = 1,
    BRG_LOG_WARN = 2,
    BRG_LOG_INFO = 3,
    BRG_LOG_DEBUG = 4,
    BRG_LOG_TRACE = 5,
};

enum {
    BRG_LOG_LINE_MAX = 1024,            /* bytes per line, with newline */
    BRG_LOG_TOPICS_MAX = 32,            /* topic=level entries in a spec */
    BRG_LOG_TOPIC_MAX = 48,             /* bytes of a topic name */
    BRG_LOG_RATELIMIT_BURST = 10,       /* default lines per window */
    BRG_LOG_RATELIMIT_INTERVAL_MS = 5000, /* default window */
};

/* Rate-limit state of one call site. Private: use BRG_LOG_RATELIMITED.
 * Guarded by the log mutex. */
struct brg_log_ratelimit {
    bool started;            /* window_start is set */
    uint64_t window_start;   /* ms, from the log clock */
    uint32_t passed;         /* lines let through in this window */
    uint64_t suppressed;     /* lines dropped since the last report */
};

/* Level cache of one call site. Private: the macros declare one. */
struct brg_log_site {
    const char *topic;                /* string literal */
    atomic_uint gen;                  /* spec generation cached (0: none) */
    atomic_int level;                 /* threshold of the topic */
    struct brg_log_ratelimit rl;      /* for BRG_LOG_RATELIMITED sites */
};

/* Sink for tests and embedding: gets each finished line (NUL-terminated,
 * ending in '\n') with its level and topic. Called with the log mutex
 * held: it must not log. */
typedef void (*brg_log_sink_cb)(enum brg_log_level level, const char *topic,
                                const char *line, void *data);

/* Monotonic milliseconds for the rate limiter (tests inject one). */
typedef uint64_t (*brg_log_clock_cb)(void *data);

/* Sets the levels: @level is the default level name (NULL: "info"),
 * @spec a comma-separated list of "level" or "topic=level" entries (NULL
 * or "": none); a bare level in @spec overrides @level. Blanks around
 * entries are ignored. On error nothing changes and returns -EINVAL with
 * a message naming the bad entry in @err (may be NULL). */
int brg_log_configure(const char *level, const char *spec,
                      char *err, size_t errlen);

/* Checks @spec as brg_log_configure would, without applying it. Returns 0
 * or -EINVAL with the reason in @why (used by the config table). */
int brg_log_spec_check(const char *spec, char *why, size_t whylen);

/* Parses a level name ("warn"; also "warning" and "off"). Returns the
 * level or -EINVAL. */
int brg_log_level_parse(const char *name);

/* Returns the level's fixed name ("error"... "trace", "off"). */
const char *brg_log_level_name(enum brg_log_level level);

/* True when a line of @level on @topic would be written. Slower than the
 * macros (walks the spec); use for expensive preparation only. */
bool brg_log_enabled(const char *topic, enum brg_log_level level);

/* Routes lines to @sink (NULL: back to stderr). */
void brg_log_set_sink(brg_log_sink_cb sink, void *data);

/* Sets the rate limiter clock (NULL: CLOCK_MONOTONIC). */
void brg_log_set_clock(brg_log_clock_cb clock, void *data);

/* Sets the rate limit: @burst lines per @interval_ms per call site. */
void brg_log_set_ratelimit(uint32_t burst, uint32_t interval_ms);

/* Formats and writes one line, whatever the configured level (the macros
 * have already checked it). */
void brg_log_write(enum brg_log_level level, const char *topic,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Private helpers of the macros. */
extern atomic_uint brg_log__gen;
int brg_log__site_refresh(struct brg_log_site *site);
bool brg_log__ratelimit_pass(struct brg_log_site *site,
                             enum brg_log_level level);

static inline bool brg_log__site_on(struct brg_log_site *site,
                                    enum brg_log_level level)
{
    int threshold;

    if (atomic_load_explicit(&site->gen, memory_order_acquire) !=
        atomic_load_explicit(&brg_log__gen, memory_order_relaxed))
        threshold = brg_log__site_refresh(site);
    else
        threshold = atomic_load_explicit(&site->level, memory_order_relaxed);
    return (int)level <= threshold;
}

/* Logs one line at @level on @topic (a string literal). Arguments are not
 * evaluated when the level is off. */
#define BRG_LOG(level, topic_, ...)                                         \
    do {                                                                    \
        static struct brg_log_site brg_log_site_ = { .topic = (topic_) };   \
        if (brg_log__site_on(&brg_log_site_, (level)))                      \
            brg_log_write((level), (topic_), __VA_ARGS__);                  \
    } while (0)

#define BRG_LOGE(topic, ...) BRG_LOG(BRG_LOG_ERROR, topic, __VA_ARGS__)
#define BRG_LOGW(topic, ...) BRG_LOG(BRG_LOG_WARN, topic, __VA_ARGS__)
#define BRG_LOGI(topic, ...) BRG_LOG(BRG_LOG_INFO, topic, __VA_ARGS__)
#define BRG_LOGD(topic, ...) BRG_LOG(BRG_LOG_DEBUG, topic, __VA_ARGS__)
#define BRG_LOGT(topic, ...) BRG_LOG(BRG_LOG_TRACE, topic, __VA_ARGS__)

/* Like BRG_LOG, limited per call site (see the top of the file). Lines
 * dropped by the level filter are not counted as suppressed. */
#define BRG_LOG_RATELIMITED(topic_, level, ...)                             \
    do {                                                                    \
        static struct brg_log_site brg_log_site_ = { .topic = (topic_) };   \
        if (brg_log__site_on(&brg_log_site_, (level)) &&                    \
            brg_log__ratelimit_pass(&brg_log_site_, (level)))               \
            brg_log_write((level), (topic_), __VA_ARGS__);                  \
    } while (0)

#endif /* BRG_LOG_H */
