/*
 * test_talk.c: the talk detector (mix_talk.h), table-driven. Each case is a
 * script of frames: a level, a frame duration, and the transition expected
 * on that frame. The defaults are start -45 dBov, stop -52 dBov, onset
 * 20 ms and hang-over 500 ms, so with 20 ms frames one loud frame starts a
 * talk spurt and 25 quiet frames end it.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "mix_talk.h"

enum {
    LOUD = 20,      /* -20 dBov: clearly talking */
    START = 45,     /* exactly the start threshold (counts as loud) */
    BAND = 48,      /* inside the hysteresis band */
    STOP = 52,      /* exactly the stop threshold (still in the band) */
    QUIET = 53,     /* just below the stop threshold */
    SILENT = 127,
    MAX_STEPS = 16,
};

/* One run of @count identical frames; @ev is the transition expected on
 * the last of them (every earlier frame of the run must give none). */
struct step {
    uint8_t level;
    uint32_t frame_ms;
    uint32_t count;
    enum mix_talk_event ev;
};

struct talk_case {
    const char *name;
    struct step steps[MAX_STEPS];
};

#define S(level, ms, count, ev) {level, ms, count, MIX_TALK_##ev}

static const struct talk_case cases[] = {
    {"silence never talks", {S(SILENT, 20, 200, NONE)}},
    {"one loud 20 ms frame starts at once (onset 20 ms)",
     {S(SILENT, 20, 10, NONE), S(LOUD, 20, 1, STARTED)}},
    {"a lone loud frame in silence: start, then stop after 500 ms",
     {S(SILENT, 20, 10, NONE), S(LOUD, 20, 1, STARTED),
      S(SILENT, 20, 24, NONE), S(SILENT, 20, 1, STOPPED),
      S(SILENT, 20, 100, NONE)}},
    {"10 ms frames need two loud frames",
     {S(LOUD, 10, 1, NONE), S(SILENT, 10, 5, NONE), S(LOUD, 10, 1, NONE),
      S(LOUD, 10, 1, STARTED)}},
    {"40 ms frames: one loud frame starts, hang-over after 13 frames",
     {S(LOUD, 40, 1, STARTED), S(SILENT, 40, 12, NONE),
      S(SILENT, 40, 1, STOPPED)}},
    {"the start threshold itself counts as loud",
     {S(START, 20, 1, STARTED)}},
    {"one step quieter than start does not start",
     {S(START + 1, 20, 100, NONE)}},
    {"hang-over: 480 ms of silence keeps talking, 500 ms stops",
     {S(LOUD, 20, 1, STARTED), S(LOUD, 20, 50, NONE),
      S(QUIET, 20, 24, NONE), S(QUIET, 20, 1, STOPPED)}},
    {"a loud frame inside the hang-over restarts the count",
     {S(LOUD, 20, 1, STARTED), S(SILENT, 20, 20, NONE), S(LOUD, 20, 1, NONE),
      S(SILENT, 20, 24, NONE), S(SILENT, 20, 1, STOPPED)}},
    {"the hysteresis band does not flap while talking",
     {S(LOUD, 20, 1, STARTED), S(BAND, 20, 200, NONE), S(STOP, 20, 200, NONE),
      S(BAND - 2, 20, 50, NONE)}},
    {"the hysteresis band does not start a quiet leg",
     {S(BAND, 20, 200, NONE), S(STOP, 20, 200, NONE), S(START + 1, 20, 10, NONE)}},
    {"band frames interrupt the hang-over count",
     {S(LOUD, 20, 1, STARTED), S(QUIET, 20, 20, NONE), S(BAND, 20, 1, NONE),
      S(QUIET, 20, 24, NONE), S(QUIET, 20, 1, STOPPED)}},
    {"levels hovering around the stop threshold never stop",
     {S(LOUD, 20, 1, STARTED), S(STOP, 20, 1, NONE), S(QUIET, 20, 1, NONE),
      S(STOP, 20, 1, NONE), S(QUIET, 20, 1, NONE), S(STOP, 20, 1, NONE),
      S(QUIET, 20, 1, NONE), S(STOP, 20, 1, NONE), S(QUIET, 20, 20, NONE),
      S(STOP, 20, 1, NONE), S(QUIET, 20, 24, NONE), S(QUIET, 20, 1, STOPPED)}},
    {"starts again after stopping",
     {S(LOUD, 20, 1, STARTED), S(SILENT, 20, 25 - 1, NONE),
      S(SILENT, 20, 1, STOPPED), S(LOUD, 20, 1, STARTED)}},
    {"out-of-range levels are treated as silence",
     {S(LOUD, 20, 1, STARTED), S(0xff, 20, 24, NONE), S(200, 20, 1, STOPPED)}},
};

static void run_case(const struct talk_case *c)
{
    struct mix_talk_config cfg;
    struct mix_talk t;
    unsigned frame = 0;

    mix_talk_config_default(&cfg);
    mix_talk_init(&t);
    for (unsigned s = 0; s < MAX_STEPS && c->steps[s].count; s++) {
        const struct step *st = &c->steps[s];

        for (uint32_t i = 0; i < st->count; i++, frame++) {
            enum mix_talk_event want = i + 1 == st->count ? st->ev : MIX_TALK_NONE;
            enum mix_talk_event got =
                mix_talk_update(&t, &cfg, st->level, st->frame_ms);

            cr_assert_eq(got, want, "%s: step %u frame %u (level %u): got %d want %d",
                         c->name, s, frame, st->level, got, want);
            if (got == MIX_TALK_STARTED)
                cr_assert(t.talking, "%s: STARTED but not talking", c->name);
            if (got == MIX_TALK_STOPPED)
                cr_assert(!t.talking, "%s: STOPPED but talking", c->name);
        }
    }
}

Test(talk, defaults_are_documented_values)
{
    struct mix_talk_config cfg;

    memset(&cfg, 0xa5, sizeof(cfg));
    mix_talk_config_default(&cfg);
    cr_expect_eq(cfg.start_level, 45);
    cr_expect_eq(cfg.stop_level, 52);
    cr_expect_eq(cfg.onset_ms, 20u);
    cr_expect_eq(cfg.hangover_ms, 500u);
    cr_expect_lt(cfg.start_level, cfg.stop_level, "hysteresis band inverted");
}

Test(talk, init_is_quiet)
{
    struct mix_talk t;

    memset(&t, 0xa5, sizeof(t));
    mix_talk_init(&t);
    cr_expect(!t.talking);
    cr_expect_eq(t.above_ms, 0u);
    cr_expect_eq(t.below_ms, 0u);
    cr_expect_leq(t.smooth_db, -100.0f);
}

ParameterizedTestParameters(talk, table)
{
    return cr_make_param_array(struct talk_case, (void *)cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(const struct talk_case *c, talk, table)
{
    run_case(c);
}

Test(talk, custom_onset_needs_consecutive_loud_time)
{
    struct mix_talk_config cfg = {
        .start_level = 40, .stop_level = 50, .onset_ms = 60, .hangover_ms = 200,
    };
    struct mix_talk t;

    mix_talk_init(&t);
    /* Two loud frames, one quiet, two loud: never 60 ms in a row. */
    cr_expect_eq(mix_talk_update(&t, &cfg, 30, 20), MIX_TALK_NONE);
    cr_expect_eq(mix_talk_update(&t, &cfg, 30, 20), MIX_TALK_NONE);
    cr_expect_eq(mix_talk_update(&t, &cfg, 60, 20), MIX_TALK_NONE);
    cr_expect_eq(mix_talk_update(&t, &cfg, 30, 20), MIX_TALK_NONE);
    cr_expect_eq(mix_talk_update(&t, &cfg, 30, 20), MIX_TALK_NONE);
    cr_expect_eq(mix_talk_update(&t, &cfg, 30, 20), MIX_TALK_STARTED);
    for (int i = 0; i < 9; i++)
        cr_expect_eq(mix_talk_update(&t, &cfg, 60, 20), MIX_TALK_NONE);
    cr_expect_eq(mix_talk_update(&t, &cfg, 60, 20), MIX_TALK_STOPPED);
}

Test(talk, smooth_level_ranks_louder_talkers_higher)
{
    struct mix_talk_config cfg;
    struct mix_talk a, b;

    mix_talk_config_default(&cfg);
    mix_talk_init(&a);
    mix_talk_init(&b);
    for (int i = 0; i < 50; i++) {
        mix_talk_update(&a, &cfg, 10, 20);
        mix_talk_update(&b, &cfg, 25, 20);
    }
    cr_expect_gt(a.smooth_db, b.smooth_db);
    cr_expect_gt(a.smooth_db, -12.0f);
    cr_expect_lt(a.smooth_db, -8.0f);
    /* Fast attack: a quiet leg that gets loud overtakes within a few frames. */
    for (int i = 0; i < 5; i++) {
        mix_talk_update(&a, &cfg, 25, 20);
        mix_talk_update(&b, &cfg, 5, 20);
    }
    cr_expect_gt(b.smooth_db, a.smooth_db);
    /* Slow decay: one pause frame does not drop a talker far. */
    mix_talk_update(&b, &cfg, SILENT, 20);
    cr_expect_gt(b.smooth_db, -20.0f);
}
