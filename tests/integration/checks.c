/*
 * checks.c: see checks.h.
 */
#include "checks.h"

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    TAIL_CHARS = 600,           /* stderr shown with a failed process check */
    REPORT_CHARS = 3000,        /* sanitizer report shown */
    STOP_MS = 5000,             /* SIGTERM to exit */
};

void it_note(const char *fmt, ...)
{
    va_list ap;

    if (!getenv("CHORUS_IT_VERBOSE"))
        return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool it_im3_hits(const double *heard, size_t n, double hz)
{
    for (size_t a = 0; a < n; a++) {
        for (size_t b = 0; b < n; b++) {
            if (b == a)
                continue;
            if (fabs(2 * heard[a] - heard[b] - hz) < 5)
                return true;
            for (size_t c = 0; c < n; c++) {
                if (c != a && c != b && fabs(heard[a] + heard[b] - heard[c] - hz) < 5)
                    return true;
            }
        }
    }
    return false;
}

void it_load(struct ta_pcm *pcm, const char *path, const char *who, uint32_t min_ms)
{
    int rc = ih_wav_load(path, pcm);

    cr_assert_eq(rc, 0, "%s: cannot read the recording %s: %s", who, path, strerror(-rc));
    it_note("%s: recording of %u ms", who, ih_pcm_ms(pcm));
    cr_assert_geq(ih_pcm_ms(pcm), min_ms, "%s: recording is %u ms long, want at least %u ms", who,
                  ih_pcm_ms(pcm), min_ms);
}

void it_load_client(struct ta_pcm *pcm, const char *name, uint32_t min_ms)
{
    char path[IH_PATH_MAX];

    it_load(pcm, ih_client_wav(path, sizeof(path), name), name, min_ms);
}

double it_expect_tone(const struct ta_pcm *pcm, const char *who, double hz, uint32_t from,
                      uint32_t to, double want, double tol)
{
    double got = ih_tone(pcm, from, to, hz);

    it_note("%s: %.0f Hz %6.1f dBFS in %u-%u ms (want %.1f +- %.1f)", who, hz, got, from, to,
            want, tol);
    cr_expect(fabs(got - want) <= tol, "%s hears %.0f Hz at %.1f dBFS in %u-%u ms, want %.1f +- %.1f",
              who, hz, got, from, to, want, tol);
    return got;
}

double it_expect_below(const struct ta_pcm *pcm, const char *who, double hz, uint32_t from,
                       uint32_t to, double max_db)
{
    double got = ih_tone_coherent(pcm, from, to, hz);

    it_note("%s: %.0f Hz %6.1f dBFS in %u-%u ms (want < %.1f)", who, hz, got, from, to, max_db);
    cr_expect(got < max_db, "%s hears %.0f Hz at %.1f dBFS in %u-%u ms, want below %.1f", who, hz,
              got, from, to, max_db);
    return got;
}

void it_expect_exit(const struct ih_proc *p, int code, const char *msg)
{
    char *err = ih_read_file(p->err_path);
    size_t n = strlen(err);
    const char *tail = n > TAIL_CHARS ? err + n - TAIL_CHARS : err;
    int got = ih_proc_exit_code(p);

    if (getenv("CHORUS_IT_VERBOSE")) {
        char *out = ih_read_file(p->out_path);
        it_note("%s: exit %d after %llu ms %s", p->name, got,
                (unsigned long long)ih_proc_runtime_ms(p), out);
        free(out);
    }
    cr_expect_eq(got, code, "%s exited with %d, want %d; its stderr ends:\n%s", p->name, got, code,
                 tail);
    if (msg)
        cr_expect(strstr(err, msg) != NULL, "%s: stderr lacks \"%s\"; it ends:\n%s", p->name, msg,
                  tail);
    free(err);
}

void it_finish(struct ih_bridge *b)
{
    static const char *const marks[] = {
        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
        "WARNING: ThreadSanitizer", NULL,
    };
    char path[IH_PATH_MAX];
    static char report[REPORT_CHARS];

    if (b && ih_proc_running(&b->proc)) {
        ih_proc_signal(&b->proc, SIGTERM);
        cr_expect_eq(ih_proc_wait(&b->proc, STOP_MS), 0, "the bridge ignored SIGTERM for %d ms",
                     STOP_MS);
        it_expect_exit(&b->proc, 0, NULL);
        cr_expect(!ih_file_contains(b->proc.err_path, "handles still open"),
                  "the bridge closed its loop with handles still open; see %s", b->proc.err_path);
    }
    if (ih_logs_find(marks, path, sizeof(path), report, sizeof(report)))
        cr_expect_fail("sanitizer report in %s:\n%s", path, report);
}
