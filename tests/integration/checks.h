/*
 * checks.h: Criterion checks shared by the integration suites: a recording
 * holds a tone at the expected level, or does not; a child exited with the
 * expected status and message. Every failure message carries the measured
 * value, and a failed process check shows the end of the process's stderr.
 *
 * Set CHORUS_IT_VERBOSE=1 to print every measurement (to see the margins).
 *
 * Thread: the test's.
 */
#ifndef IT_CHECKS_H
#define IT_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

#define IT_TONE_DB (-12.0)      /* the clients' tone level (their default) */
#define IT_TOL_DB 3.0           /* a heard tone: within this of its level */
#define IT_OWN_BELOW_DB 30.0    /* one's own tone: at least this much lower */
#define IT_GONE_DB (-45.0)      /* a silenced tone measures below this */
/* One's own tone where codec intermodulation of the tones heard lands on
 * it (see it_im3_hits): still far below an echo, which comes back near the
 * tone's level. */
#define IT_OWN_BELOW_IM3_DB 20.0

enum {
    IT_SKIP_MS = 500,           /* start of a recording left out (joins, jitter buffer) */
};

/* Reads the recording at @path into @pcm (initialised here) and asserts
 * that it is at least @min_ms long. @who names it in messages. */
void it_load(struct ta_pcm *pcm, const char *path, const char *who, uint32_t min_ms);

/* Reads client @name's recording (see it_load). */
void it_load_client(struct ta_pcm *pcm, const char *name, uint32_t min_ms);

/* Expects @hz in @pcm between @from and @to ms at @want dBFS +- @tol
 * (measured with ih_tone); returns the measured level. */
double it_expect_tone(const struct ta_pcm *pcm, const char *who, double hz, uint32_t from,
                      uint32_t to, double want, double tol);

/* Expects @hz in @pcm between @from and @to ms below @max_db (measured
 * with ih_tone_coherent); returns the measured level. */
double it_expect_below(const struct ta_pcm *pcm, const char *who, double hz, uint32_t from,
                       uint32_t to, double max_db);

/* Expects @p to have exited with @code and, when @msg is not NULL, its
 * stderr to contain @msg. */
void it_expect_exit(const struct ih_proc *p, int code, const char *msg);

/* Ends a test: stops bridge @b (when given and still running) with
 * SIGTERM and expects it to exit 0 within a few seconds, without open
 * handles; then expects no sanitizer report (ASan, LSan, UBSan, TSan) in
 * the stderr of any child the test started. Call it last in every test:
 * Criterion ignores failed checks in a .fini. */
void it_finish(struct ih_bridge *b);

/* True when a third-order intermodulation product of the @n tones in
 * @heard (2a - b, or a + b - c) falls within 5 Hz of @hz. Two Opus codecs
 * in a row (client, then the bridge's mix) leave such products some 30 to
 * 35 dB below the tones, e.g. 2 x 550 - 440 = 660 Hz. */
bool it_im3_hits(const double *heard, size_t n, double hz);

/* Prints a measurement when CHORUS_IT_VERBOSE is set. */
void it_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* IT_CHECKS_H */
