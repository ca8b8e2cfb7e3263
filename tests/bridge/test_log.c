/*
 * test_log.c: levelled, topic-filtered, rate-limited logging (brg_log.h).
 * Lines are captured with a sink; the rate limiter runs on an injected
 * clock. Criterion forks per test, so each test starts from the defaults.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "brg_log.h"

enum { MAX_LINES = 4096 };

static struct {
    pthread_mutex_t lock;
    unsigned n;
    char *line[MAX_LINES];
    enum brg_log_level level[MAX_LINES];
} cap = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void sink(enum brg_log_level level, const char *topic,
                 const char *line, void *data)
{
    (void)topic;
    (void)data;
    pthread_mutex_lock(&cap.lock);
    if (cap.n < MAX_LINES) {
        cap.level[cap.n] = level;
        cap.line[cap.n++] = strdup(line);
    }
    pthread_mutex_unlock(&cap.lock);
}

static uint64_t fake_ms;

static uint64_t fake_clock(void *data)
{
    (void)data;
    return fake_ms;
}

static void setup(void)
{
    brg_log_set_sink(sink, NULL);
    brg_log_set_clock(fake_clock, NULL);
}

static void teardown(void)
{
    for (unsigned i = 0; i < cap.n; i++)
        free(cap.line[i]);
    cap.n = 0;
}

/* Captured line @i from its topic on (after "<time> <LEVEL> "). */
static const char *body(unsigned i)
{
    cr_assert_lt(i, cap.n, "line %u of %u", i, cap.n);
    cr_assert_gt(strlen(cap.line[i]), 30u);
    return cap.line[i] + 31;
}

/* True when a line containing @needle was captured. */
static bool captured(const char *needle)
{
    for (unsigned i = 0; i < cap.n; i++)
        if (strstr(cap.line[i], needle))
            return true;
    return false;
}

TestSuite(log, .init = setup, .fini = teardown);

Test(log, line_format)
{
    const char *l;

    BRG_LOGW("bridge.udp", "hello %d", 42);
    cr_assert_eq(cap.n, 1u);
    l = cap.line[0];
    /* 2024-05-01T12:34:56.789Z WARN  bridge.udp: hello 42\n */
    cr_expect_eq(strlen(l), 24 + 1 + 5 + 1 + strlen("bridge.udp: hello 42\n"));
    cr_expect_eq(l[4], '-');
    cr_expect_eq(l[7], '-');
    cr_expect_eq(l[10], 'T');
    cr_expect_eq(l[13], ':');
    cr_expect_eq(l[16], ':');
    cr_expect_eq(l[19], '.');
    cr_expect_eq(l[23], 'Z');
    cr_expect_str_eq(l + 24, " WARN  bridge.udp: hello 42\n");
    cr_expect_eq(cap.level[0], BRG_LOG_WARN);
}

Test(log, default_is_info)
{
    BRG_LOGE("a", "e");
    BRG_LOGW("a", "w");
    BRG_LOGI("a", "i");
    BRG_LOGD("a", "d");
    BRG_LOGT("a", "t");
    cr_expect_eq(cap.n, 3u);
    cr_expect(strstr(cap.line[0], "ERROR a: e"));
    cr_expect(strstr(cap.line[2], "INFO  a: i"));
}

Test(log, topic_levels)
{
    char err[128];

    cr_assert_eq(brg_log_configure("info", "bridge.udp=debug,mix=warn", err,
                                   sizeof(err)), 0, "%s", err);
    BRG_LOGD("bridge.udp", "udp debug");         /* yes: topic */
    BRG_LOGT("bridge.udp", "udp trace");         /* no */
    BRG_LOGD("bridge.udp.rx", "udp child debug");/* yes: dotted child */
    BRG_LOGD("bridge.udpx", "udpx debug");       /* no: not a dotted child */
    BRG_LOGD("bridge.api", "api debug");         /* no: default info */
    BRG_LOGI("bridge.api", "api info");          /* yes */
    BRG_LOGI("mix.rt", "mix info");              /* no: mix=warn */
    BRG_LOGW("mix.rt", "mix warn");              /* yes */
    BRG_LOGI("mixer", "mixer info");             /* yes: mixer is not mix */
    cr_expect(captured("udp debug"));
    cr_expect_not(captured("udp trace"));
    cr_expect(captured("udp child debug"));
    cr_expect_not(captured("udpx debug"));
    cr_expect_not(captured("api debug"));
    cr_expect(captured("api info"));
    cr_expect_not(captured("mix info"));
    cr_expect(captured("mix warn"));
    cr_expect(captured("mixer info"));
    cr_expect_eq(cap.n, 5u);
}

Test(log, longest_match_wins)
{
    cr_assert_eq(brg_log_configure("error", "bridge=trace, bridge.udp=error",
                                   NULL, 0), 0);
    BRG_LOGW("bridge.udp", "udp warn");
    BRG_LOGT("bridge.api", "api trace");
    BRG_LOGW("ovl.handshake", "ovl warn");
    cr_expect_not(captured("udp warn"));
    cr_expect(captured("api trace"));
    cr_expect_not(captured("ovl warn"));
    cr_expect(brg_log_enabled("bridge.x", BRG_LOG_TRACE));
    cr_expect_not(brg_log_enabled("bridge.udp.y", BRG_LOG_WARN));
    cr_expect(brg_log_enabled("bridge.udp.y", BRG_LOG_ERROR));
}

Test(log, bare_level_in_spec_and_off)
{
    cr_assert_eq(brg_log_configure("info", "debug", NULL, 0), 0);
    BRG_LOGD("x", "debug on");
    cr_assert_eq(brg_log_configure("off", NULL, NULL, 0), 0);
    BRG_LOGE("x", "error off");
    cr_assert_eq(brg_log_configure(NULL, "off,x.y=warning", NULL, 0), 0);
    BRG_LOGE("x", "x error");
    BRG_LOGW("x.y", "xy warn");
    cr_expect(captured("debug on"));
    cr_expect_not(captured("error off"));
    cr_expect_not(captured("x error"));
    cr_expect(captured("xy warn"));
    cr_expect_not(brg_log_enabled("x", BRG_LOG_OFF));
}

static void site_under_test(int i)
{
    BRG_LOGD("bridge.api", "site %d", i);
}

Test(log, reconfigure_updates_cached_sites)
{
    site_under_test(1);                                 /* info: no */
    cr_assert_eq(brg_log_configure("debug", NULL, NULL, 0), 0);
    site_under_test(2);                                 /* yes */
    cr_assert_eq(brg_log_configure("info", "bridge.api=debug", NULL, 0), 0);
    site_under_test(3);                                 /* yes */
    cr_assert_eq(brg_log_configure("trace", "bridge=info", NULL, 0), 0);
    site_under_test(4);                                 /* no */
    cr_expect_eq(cap.n, 2u);
    cr_expect(captured("site 2"));
    cr_expect(captured("site 3"));
}

static int evaluated;

static int side_effect(void)
{
    return ++evaluated;
}

Test(log, arguments_not_evaluated_when_off)
{
    BRG_LOGD("a", "%d", side_effect());
    BRG_LOG_RATELIMITED("a", BRG_LOG_TRACE, "%d", side_effect());
    cr_expect_eq(evaluated, 0);
    BRG_LOGI("a", "%d", side_effect());
    cr_expect_eq(evaluated, 1);
}

Test(log, bad_specs_leave_config_unchanged)
{
    static const struct { const char *level, *spec, *needle; } bad[] = {
        { "loud", NULL, "unknown level 'loud'" },
        { NULL, "bridge.udp=loud", "unknown level 'loud' in 'bridge.udp=loud'" },
        { NULL, "=debug", "bad topic in '=debug'" },
        { NULL, "br idge=debug", "bad topic" },
        { NULL, "bridge.udp=", "bad level" },
        { NULL, "verbose", "unknown level 'verbose'" },
    };
    char err[160], why[200];

    cr_assert_eq(brg_log_configure("warn", NULL, NULL, 0), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_expect_eq(brg_log_configure(bad[i].level, bad[i].spec, err,
                                       sizeof(err)), -EINVAL, "case %zu", i);
        cr_expect(strstr(err, bad[i].needle), "case %zu: '%s'", i, err);
        if (bad[i].spec) {
            cr_expect_eq(brg_log_spec_check(bad[i].spec, why, sizeof(why)),
                         -EINVAL);
            cr_expect(strstr(why, "is not a log spec: "), "'%s'", why);
        }
    }
    cr_expect(brg_log_enabled("any", BRG_LOG_WARN));
    cr_expect_not(brg_log_enabled("any", BRG_LOG_INFO));
    cr_expect_eq(brg_log_spec_check("info, a=debug ,,b.c=trace", why,
                                    sizeof(why)), 0);
    cr_expect_eq(brg_log_spec_check("", why, sizeof(why)), 0);
}

Test(log, too_many_topics)
{
    char spec[4096] = "", err[128];

    for (int i = 0; i <= BRG_LOG_TOPICS_MAX; i++) {
        char e[32];

        snprintf(e, sizeof(e), "t%d=debug,", i);
        strcat(spec, e);
    }
    cr_expect_eq(brg_log_configure(NULL, spec, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "more than"), "%s", err);
}

Test(log, level_names)
{
    cr_expect_eq(brg_log_level_parse("error"), BRG_LOG_ERROR);
    cr_expect_eq(brg_log_level_parse("warning"), BRG_LOG_WARN);
    cr_expect_eq(brg_log_level_parse("trace"), BRG_LOG_TRACE);
    cr_expect_eq(brg_log_level_parse("off"), BRG_LOG_OFF);
    cr_expect_eq(brg_log_level_parse("INFO"), -EINVAL);
    cr_expect_eq(brg_log_level_parse(NULL), -EINVAL);
    cr_expect_str_eq(brg_log_level_name(BRG_LOG_DEBUG), "debug");
    cr_expect_str_eq(brg_log_level_name((enum brg_log_level)9), "?");
}

Test(log, control_characters_replaced)
{
    BRG_LOGI("bridge.api", "room '%s'", "evil\nFAKE LINE\x1b[31m\ttab");
    cr_assert_eq(cap.n, 1u);
    cr_expect_str_eq(body(0), "bridge.api: room 'evil?FAKE LINE?[31m\ttab'\n");
}

Test(log, long_message_cut)
{
    char big[3000];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    BRG_LOGI("a", "%s", big);
    cr_assert_eq(cap.n, 1u);
    cr_expect_eq(strlen(cap.line[0]), BRG_LOG_LINE_MAX - 1u);
    cr_expect_str_eq(cap.line[0] + BRG_LOG_LINE_MAX - 5, "...\n");
}

Test(log, errno_preserved)
{
    errno = EAGAIN;
    BRG_LOGI("a", "x");
    cr_expect_eq(errno, EAGAIN);
}

/* ----------------------------------------------------- rate limiting -- */

static void noisy(int i)
{
    BRG_LOG_RATELIMITED("bridge.udp", BRG_LOG_WARN, "bad packet %d", i);
}

static void noisy_other(int i)
{
    BRG_LOG_RATELIMITED("bridge.udp", BRG_LOG_WARN, "other %d", i);
}

static unsigned count_lines(const char *needle)
{
    unsigned n = 0;

    for (unsigned i = 0; i < cap.n; i++)
        n += strstr(cap.line[i], needle) != NULL;
    return n;
}

Test(log, ratelimit_counts)
{
    brg_log_set_ratelimit(3, 1000);
    fake_ms = 5000;
    for (int i = 0; i < 10; i++)
        noisy(i);
    cr_expect_eq(cap.n, 3u);
    cr_expect(captured("bad packet 2"));
    cr_expect_not(captured("bad packet 3"));

    fake_ms = 5999;             /* same window */
    noisy(10);
    cr_expect_eq(cap.n, 3u);

    fake_ms = 6000;             /* new window: report 8, then the line */
    noisy(11);
    cr_assert_eq(cap.n, 5u);
    cr_expect_str_eq(body(3), "bridge.udp: suppressed 8 messages\n");
    cr_expect_eq(cap.level[3], BRG_LOG_WARN);
    cr_expect(captured("bad packet 11"));
    noisy(12);
    noisy(13);
    noisy(14);                  /* 4th in window: suppressed */
    cr_expect_eq(count_lines("bad packet"), 6u);

    fake_ms = 9000;             /* one suppressed, reported once */
    noisy(15);
    cr_expect_eq(count_lines("suppressed 1 messages"), 1u);
    fake_ms = 20000;            /* nothing suppressed: no report line */
    noisy(16);
    cr_expect_eq(count_lines("suppressed"), 2u);
    cr_expect_eq(count_lines("bad packet"), 8u);
}

Test(log, ratelimit_per_call_site)
{
    brg_log_set_ratelimit(2, 1000);
    fake_ms = 0;
    for (int i = 0; i < 5; i++) {
        noisy(i);
        noisy_other(i);
    }
    cr_expect_eq(count_lines("bad packet"), 2u);
    cr_expect_eq(count_lines("other"), 2u);
}

Test(log, ratelimit_ignores_filtered_lines)
{
    brg_log_set_ratelimit(1, 1000);
    cr_assert_eq(brg_log_configure("error", NULL, NULL, 0), 0);
    fake_ms = 0;
    for (int i = 0; i < 5; i++)
        noisy(i);                                   /* filtered: uncounted */
    cr_assert_eq(brg_log_configure("info", NULL, NULL, 0), 0);
    fake_ms = 2000;
    noisy(99);
    cr_expect_eq(cap.n, 1u);
    cr_expect_not(captured("suppressed"));
}

/* ------------------------------------------------------------ threads -- */

static void *log_thread(void *arg)
{
    for (int i = 0; i < 200; i++)
        BRG_LOGI("bridge.loop", "thread %ld line %d", (long)(intptr_t)arg, i);
    return NULL;
}

Test(log, threads_do_not_interleave)
{
    pthread_t t[4];

    for (intptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, log_thread, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(cap.n, 800u);
    for (unsigned i = 0; i < cap.n; i++) {
        const char *nl = strchr(cap.line[i], '\n');

        cr_expect(nl && nl[1] == '\0', "line %u", i);
    }
}

/* The default sink writes whole lines to stderr. */
Test(log, default_sink_is_stderr)
{
    char path[] = "/tmp/brg-log-XXXXXX", buf[256] = "";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    ssize_t n;

    cr_assert(fd >= 0 && saved >= 0);
    brg_log_set_sink(NULL, NULL);
    dup2(fd, STDERR_FILENO);
    BRG_LOGE("bridge.udp", "to stderr %d", 7);
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    cr_assert_gt(n, 24);
    cr_expect_str_eq(buf + 24, " ERROR bridge.udp: to stderr 7\n");
}
