/*
 * harness.h: real processes on loopback for the integration tests ("ih_").
 *
 * A test runs the real chorus-bridge, chorus-client and gst-launch-1.0
 * binaries and talks to them over 127.0.0.1 only:
 *
 *   - ih_setup() (a Criterion .init) makes a private temporary directory
 *     and forks a watchdog; ih_teardown() (.fini, which Criterion also runs
 *     after a failed assertion) kills every child still running, reaps it
 *     and removes the directory. Should the test process die without its
 *     .fini (a crash, Criterion's timeout), the watchdog sees its pipe
 *     close, SIGKILLs the children the harness registered with it and
 *     removes the directory, so no bridge outlives its test.
 *   - ih_bridge_start() runs a bridge on a fresh state directory and free
 *     loopback ports (media, API, a small RTP range, the overlay port and
 *     spare ports for the test's own sockets). The ports come from a slot derived from the pid,
 *     checked free by binding them, in 20000-31999: below Linux's ephemeral
 *     range, so clients' ports never collide with them, and different for
 *     parallel ctest runs. It waits (bounded) until GET /v1/health answers
 *     and reads the API token from <state>/api-token.
 *   - ih_spawn() runs any program with posix_spawn, stdout and stderr in
 *     files of the temporary directory, the CHORUS_* variables of the
 *     environment removed (so the host's settings cannot leak in). Every
 *     wait is bounded: a child still running at its deadline is killed.
 *
 * Set CHORUS_IT_KEEP=1 to keep the temporary directory (logs, WAV files);
 * its path is printed.
 *
 * Thread: one (the test's).
 */
#ifndef IH_HARNESS_H
#define IH_HARNESS_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audio.h"

enum {
    IH_MAX_PROCS = 32,          /* children one test may start */
    IH_SPARE_PORTS = 4,         /* free ports for the test's own sockets */
    IH_RTP_PORTS = 8,           /* the bridge's plain-RTP range */
    IH_HEALTH_TIMEOUT_MS = 15000, /* bridge start-up (ASan builds are slow) */
    IH_PATH_MAX = 512,
    IH_TONE_BLOCK_MS = 100,     /* analysis block of ih_tone */
};

/* A child process. Fields are read-only for the test. */
struct ih_proc {
    pid_t pid;                   /* 0: not started, or reaped */
    bool reaped;                 /* status is valid */
    int status;                  /* waitpid status */
    char name[32];               /* for messages and file names */
    char out_path[IH_PATH_MAX];  /* its stdout */
    char err_path[IH_PATH_MAX];  /* its stderr */
    uint64_t start_ms;           /* ih_now_ms() at spawn */
    uint64_t end_ms;             /* ih_now_ms() when reaped */
};

/* A bridge under test. Fields are read-only for the test. */
struct ih_bridge {
    struct ih_proc proc;
    char state_dir[IH_PATH_MAX];
    uint16_t media_port;         /* UDP and TCP */
    uint16_t api_port;
    uint16_t rtp_min, rtp_max;   /* plain RTP legs */
    uint16_t spare[IH_SPARE_PORTS]; /* free for the test (gst udpsrc...) */
    uint16_t overlay_port;       /* overlay UDP and TCP (--overlay-port) */
    char token[128];
    char url[64];                /* "http://127.0.0.1:<api_port>" */
    unsigned starts;             /* how many times it was started */
    const char *const *extra;    /* extra flags of ih_bridge_start (kept
                                    for restarts; the caller's array must
                                    outlive the bridge) */
};

/* What a chorus-client should do. Unset fields take the defaults noted. */
struct ih_client {
    const char *name;            /* display name and file prefix (required) */
    const char *room;            /* required */
    double tone_hz;              /* 0: send silence */
    double level_db;             /* 0: the client's default (-12 dBFS) */
    double duration_s;           /* required */
    bool tcp;
    const char *pin;             /* NULL: none */
    bool expect_audio;           /* --expect-audio */
};

/* Criterion .init / .fini of every integration suite. */
void ih_setup(void);
void ih_teardown(void);

/* Monotonic milliseconds. */
uint64_t ih_now_ms(void);
void ih_sleep_ms(uint64_t ms);
/* Sleeps until ih_now_ms() >= @t (returns at once if already past). */
void ih_sleep_until(uint64_t t);

/* "<tmpdir>/<name>" into @buf (the harness's private directory). */
const char *ih_path(char *buf, size_t size, const char *name);

/* Path of a binary of this build: CHORUS_BIN_DIR/@name. */
const char *ih_bin(char *buf, size_t size, const char *name);

/* Starts @argv[0] (a path; no PATH search) with posix_spawn, stdout and
 * stderr to <tmpdir>/<name>.out and .err. @p is registered for teardown.
 * Returns 0 or a negative errno. */
int ih_spawn(struct ih_proc *p, const char *name, const char *const argv[]);

/* Waits for @p to exit for at most @timeout_ms; kills it (SIGKILL) and
 * reaps it when it does not. Returns 0 when it exited by itself,
 * -ETIMEDOUT when it had to be killed. */
int ih_proc_wait(struct ih_proc *p, int timeout_ms);

/* Waits for all @n processes, with one deadline for all (see
 * ih_proc_wait). Returns 0 or -ETIMEDOUT when any had to be killed. */
int ih_procs_wait(struct ih_proc *const *ps, size_t n, int timeout_ms);

/* True while @p has not exited (reaps it when it has). */
bool ih_proc_running(struct ih_proc *p);

/* Sends @sig to @p if it still runs. Returns 0 or a negative errno. */
int ih_proc_signal(struct ih_proc *p, int sig);

/* Exit status of a reaped process; 128 + signal when it was killed by
 * one; -1 when not reaped. */
int ih_proc_exit_code(const struct ih_proc *p);

/* Milliseconds from spawn to reaping (0 when not reaped). */
uint64_t ih_proc_runtime_ms(const struct ih_proc *p);

/* The whole file as a malloc'd string ("" when unreadable; never NULL). */
char *ih_read_file(const char *path);

/* True when the file at @path contains @needle. */
bool ih_file_contains(const char *path, const char *needle);

/* Looks for any of the NULL-terminated @marks in the stderr files (*.err)
 * of every child this test started. On a hit, stores the file's path in
 * @path and the text from the mark on (at most @size - 1 bytes) in @text,
 * and returns true. */
bool ih_logs_find(const char *const *marks, char *path, size_t path_size, char *text,
                  size_t size);

/* ---- the bridge ---- */

/* Starts a bridge on a fresh state directory and free ports, with
 * @extra_args (NULL-terminated, may be NULL) after the harness's own.
 * Returns 0 once /v1/health answered 200 and the token was read, or a
 * negative errno (the bridge's log is then in <tmpdir>/bridge-N.err). */
int ih_bridge_start(struct ih_bridge *b, const char *const *extra_args);

/* Starts the bridge again on the same state directory and ports (after it
 * exited or was killed), and waits for health as ih_bridge_start does. */
int ih_bridge_restart(struct ih_bridge *b);

/* Path of the log (stderr) of the latest run of @b. */
const char *ih_bridge_log(const struct ih_bridge *b);

/* ---- HTTP (libcurl; tests/api/http_client.c) ---- */

/* Sends @method @path (appended to b->url) with the bridge's token and,
 * when @json_body is not NULL, that body as application/json. Stores the
 * parsed answer in *@out (NULL when none or not JSON; may pass NULL).
 * Returns the HTTP status, or -1 when no answer came. */
long ih_http(const struct ih_bridge *b, const char *method, const char *path,
             const char *json_body, json_t **out);

/* Number of participants listed for @room, or -1 on error. */
int ih_participant_count(const struct ih_bridge *b, const char *room);

/* Polls (every 20 ms, at most @timeout_ms) until @room lists @n
 * participants. Returns 0 or -ETIMEDOUT. */
int ih_wait_participants(const struct ih_bridge *b, const char *room, int n, int timeout_ms);

/* The id of the participant of @room whose display_name is @name, or 0. */
uint32_t ih_participant_id(const struct ih_bridge *b, const char *room, const char *name);

/* Value of the unlabelled metric @name in GET /metrics (the first sample
 * of that name, labels included in @name when given, e.g.
 * chorus_api_requests_total{status="401"}), or -1 when absent. */
double ih_metric(const struct ih_bridge *b, const char *name);

/* ---- clients ---- */

/* Starts chorus-client as described by @c against bridge @b, recording to
 * <tmpdir>/<name>.wav. */
int ih_client_spawn(struct ih_proc *p, const struct ih_bridge *b, const struct ih_client *c);

/* Path of the recording of client @name. */
const char *ih_client_wav(char *buf, size_t size, const char *name);

/* ---- audio ---- */

/* Reads a recording (ta_wav_read) into @pcm (initialised here). Returns 0
 * or a negative errno. */
int ih_wav_load(const char *path, struct ta_pcm *pcm);

/*
 * Level in dBFS at which @hz is present in @pcm between @from_ms and
 * @to_ms (0: the end): the power mean of ta_tone_db over consecutive
 * IH_TONE_BLOCK_MS blocks. One Goertzel over a long window measures only
 * the part of a tone that stays phase-coherent, so a single 20 ms gap that
 * shifts the rest of a recording (a jitter buffer re-buffering under CPU
 * load) can make a tone that is there all along measure 10 dB low; blocks
 * do not care, while a real dropout still lowers the mean by the fraction
 * of the time it lasts. Use it to check that a tone is there.
 */
double ih_tone(const struct ta_pcm *pcm, uint32_t from_ms, uint32_t to_ms, double hz);

/*
 * Level in dBFS of @hz over the whole window as one Goertzel (see
 * ta_pcm_tone_db): its narrow bandwidth keeps codec noise out, so it can
 * show a tone 50 dB down that a 100 ms block would bury in noise. Use it to
 * check that a tone is absent (phase jumps can only lower it, and an echo
 * would measure near the tone's level anyway).
 */
double ih_tone_coherent(const struct ta_pcm *pcm, uint32_t from_ms, uint32_t to_ms, double hz);

/* Length of @pcm in milliseconds. */
uint32_t ih_pcm_ms(const struct ta_pcm *pcm);

/* ---- raw sockets ---- */

/* A UDP socket bound to 127.0.0.1:@port (0: any free port). Returns the fd
 * or a negative errno. The caller closes it. */
int ih_udp_socket(uint16_t port);

/* True when 127.0.0.1:@port cannot be bound for UDP (someone holds it). */
bool ih_udp_port_taken(uint16_t port);

#endif /* IH_HARNESS_H */
