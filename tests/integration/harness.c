/*
 * harness.c: real processes on loopback for the integration tests. See
 * harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"

#ifndef CHORUS_BIN_DIR
#error "CHORUS_BIN_DIR must name the directory of chorus-bridge and chorus-client"
#endif

extern char **environ;

enum {
    PORT_LO = 20000,            /* below the ephemeral range (32768-60999) */
    PORT_HI = 32000,
    SLOT_PORTS = 16,            /* media, api, 8 RTP, 4 spare, overlay, 1 unused */
    SLOT_OVERLAY = 2 + IH_RTP_PORTS + IH_SPARE_PORTS, /* overlay's offset */
    SLOT_TRIES = 64,            /* slots probed before giving up */
    START_TRIES = 4,            /* bridge starts tried on fresh ports */
    POLL_MS = 5,                /* process-wait granularity */
    HEALTH_POLL_MS = 20,
    KILL_WAIT_MS = 5000,        /* reaping after SIGKILL */
    MAX_ENV = 512,              /* environment entries passed on */
    MAX_ARGS = 48,
};

/* Messages to the watchdog: +pid registers a child, -pid forgets it,
 * WD_CLEAN says the test cleaned up itself. */
enum { WD_CLEAN = 0 };

static struct {
    bool ready;
    char root[IH_PATH_MAX];     /* private temporary directory */
    int wd_fd;                  /* write end of the watchdog's pipe */
    pid_t wd_pid;
    pid_t pids[IH_MAX_PROCS];   /* children not yet reaped (0: free) */
    unsigned bridges;           /* bridges started (state dir names) */
} H = {.wd_fd = -1};

uint64_t ih_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ih_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void ih_sleep_until(uint64_t t)
{
    uint64_t now = ih_now_ms();

    if (t > now)
        ih_sleep_ms(t - now);
}

const char *ih_path(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", H.root, name);

    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "harness: path %s/%s too long\n", H.root, name);
        abort();
    }
    return buf;
}

const char *ih_bin(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", CHORUS_BIN_DIR, name);
    return buf;
}

/* ---- watchdog ---- */

static void wd_send(int32_t msg)
{
    if (H.wd_fd >= 0) {
        ssize_t n = write(H.wd_fd, &msg, sizeof(msg));
        (void)n; /* a dead watchdog only loses crash cleanup */
    }
}

/* The watchdog process: remembers the registered children and, when the
 * test process goes away without saying it cleaned up, kills them and
 * removes the temporary directory. Uses only read, kill, open, dup2,
 * close_range and execv, which are safe after fork. */
static void __attribute__((noreturn)) watchdog(int rfd)
{
    pid_t pids[IH_MAX_PROCS * 4] = {0};
    bool clean = false;
    int32_t msg;
    int null = open("/dev/null", O_RDWR);

    /* Hold nothing of the test's (Criterion's pipes) open. */
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    dup2(rfd, 3);
    close_range(4, ~0u, 0);
    while (read(3, &msg, sizeof(msg)) == (ssize_t)sizeof(msg)) {
        if (msg == WD_CLEAN) {
            clean = true;
            continue;
        }
        for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
            if (msg > 0 && pids[i] == 0) {
                pids[i] = msg;
                break;
            }
            if (msg < 0 && pids[i] == -msg) {
                pids[i] = 0;
                break;
            }
        }
    }
    for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    }
    if (!clean && H.root[0] && !getenv("CHORUS_IT_KEEP")) {
        const char *argv[] = {"rm", "-rf", "--", H.root, NULL};
        execv("/bin/rm", (char *const *)argv);
    }
    _exit(0);
}

static void track(pid_t pid)
{
    for (size_t i = 0; i < IH_MAX_PROCS; i++) {
        if (H.pids[i] == 0) {
            H.pids[i] = pid;
            wd_send((int32_t)pid);
            return;
        }
    }
    /* More children than the table holds: kill it rather than leak it. */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fprintf(stderr, "harness: more than %d children; raise IH_MAX_PROCS\n", IH_MAX_PROCS);
    abort();
}

static void untrack(pid_t pid)
{
    for (size_t i = 0; i < IH_MAX_PROCS; i++) {
        if (H.pids[i] == pid) {
            H.pids[i] = 0;
            wd_send(-(int32_t)pid);
            return;
        }
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void ih_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    int fds[2];

    memset(&H, 0, sizeof(H));
    H.wd_fd = -1;
    snprintf(H.root, sizeof(H.root), "%s/chorus-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(H.root)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", H.root, strerror(errno));
        abort();
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "harness: pipe: %s\n", strerror(errno));
        abort();
    }
    fflush(NULL);
    H.wd_pid = fork();
    if (H.wd_pid == 0) {
        close(fds[1]);
        watchdog(fds[0]);
    }
    close(fds[0]);
    if (H.wd_pid < 0) {
        close(fds[1]);
        H.wd_pid = 0;
    } else {
        H.wd_fd = fds[1];
    }
    if (getenv("CHORUS_IT_KEEP"))
        fprintf(stderr, "harness: files in %s\n", H.root);
    H.ready = true;
}

void ih_teardown(void)
{
    if (!H.ready)
        return;
    for (size_t i = 0; i < IH_MAX_PROCS; i++) {
        pid_t pid = H.pids[i];
        uint64_t deadline = ih_now_ms() + KILL_WAIT_MS;

        if (pid == 0)
            continue;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, WNOHANG) == 0 && ih_now_ms() < deadline)
            ih_sleep_ms(POLL_MS);
        untrack(pid);
    }
    if (!getenv("CHORUS_IT_KEEP"))
        nftw(H.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    wd_send(WD_CLEAN);
    if (H.wd_fd >= 0)
        close(H.wd_fd);
    if (H.wd_pid > 0) {
        uint64_t deadline = ih_now_ms() + KILL_WAIT_MS;

        while (waitpid(H.wd_pid, NULL, WNOHANG) == 0 && ih_now_ms() < deadline)
            ih_sleep_ms(POLL_MS);
    }
    H.ready = false;
}

/* ---- processes ---- */

/* The environment without CHORUS_* entries, in @env (MAX_ENV slots). */
static void clean_env(char **env)
{
    size_t n = 0;

    for (char **e = environ; *e && n < MAX_ENV - 1; e++) {
        if (strncmp(*e, "CHORUS_", 7) != 0)
            env[n++] = *e;
    }
    env[n] = NULL;
}

int ih_spawn(struct ih_proc *p, const char *name, const char *const argv[])
{
    static char *env[MAX_ENV];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, defaults;
    char file[IH_PATH_MAX];
    int rc;

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(file, sizeof(file), "%s.out", name);
    ih_path(p->out_path, sizeof(p->out_path), file);
    snprintf(file, sizeof(file), "%s.err", name);
    ih_path(p->err_path, sizeof(p->err_path), file);
    clean_env(env);

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    /* The test runner may block or ignore signals; children start clean
     * (gst-launch needs SIGINT, the bridge SIGTERM). */
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGCHLD);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    fflush(NULL);
    rc = posix_spawn(&p->pid, argv[0], &fa, &attr, (char *const *)argv, env);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        p->pid = 0;
        return -rc;
    }
    p->start_ms = ih_now_ms();
    track(p->pid);
    return 0;
}

static void reaped(struct ih_proc *p, int status)
{
    p->reaped = true;
    p->status = status;
    p->end_ms = ih_now_ms();
    untrack(p->pid);
}

bool ih_proc_running(struct ih_proc *p)
{
    int st;

    if (p->pid == 0 || p->reaped)
        return false;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
        reaped(p, st);
        return false;
    }
    return true;
}

/* SIGKILLs @p and reaps it (bounded: KILL_WAIT_MS). */
static void kill_and_reap(struct ih_proc *p)
{
    uint64_t deadline = ih_now_ms() + KILL_WAIT_MS;
    int st = 0;

    kill(p->pid, SIGKILL);
    do {
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            reaped(p, st);
            return;
        }
        ih_sleep_ms(POLL_MS);
    } while (ih_now_ms() < deadline);
    fprintf(stderr, "harness: %s (pid %d) survived SIGKILL for %d ms\n", p->name, (int)p->pid,
            KILL_WAIT_MS);
}

int ih_proc_wait(struct ih_proc *p, int timeout_ms)
{
    return ih_procs_wait(&p, 1, timeout_ms);
}

int ih_procs_wait(struct ih_proc *const *ps, size_t n, int timeout_ms)
{
    uint64_t deadline = ih_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int rc = 0;

    for (;;) {
        size_t running = 0;

        for (size_t i = 0; i < n; i++)
            running += ih_proc_running(ps[i]);
        if (running == 0)
            return rc;
        if (ih_now_ms() >= deadline)
            break;
        ih_sleep_ms(POLL_MS);
    }
    for (size_t i = 0; i < n; i++) {
        if (ih_proc_running(ps[i])) {
            fprintf(stderr, "harness: %s still running after %d ms: killed\n", ps[i]->name,
                    timeout_ms);
            kill_and_reap(ps[i]);
            rc = -ETIMEDOUT;
        }
    }
    return rc;
}

int ih_proc_signal(struct ih_proc *p, int sig)
{
    if (!ih_proc_running(p))
        return -ESRCH;
    return kill(p->pid, sig) == 0 ? 0 : -errno;
}

int ih_proc_exit_code(const struct ih_proc *p)
{
    if (!p->reaped)
        return -1;
    if (WIFEXITED(p->status))
        return WEXITSTATUS(p->status);
    if (WIFSIGNALED(p->status))
        return 128 + WTERMSIG(p->status);
    return -1;
}

uint64_t ih_proc_runtime_ms(const struct ih_proc *p)
{
    return p->reaped ? p->end_ms - p->start_ms : 0;
}

char *ih_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s = NULL;
    size_t n = 0, cap = 0;

    if (f) {
        for (;;) {
            if (cap - n < 4096) {
                char *ns = realloc(s, cap + 8192);
                if (!ns)
                    break;
                s = ns;
                cap += 8192;
            }
            size_t got = fread(s + n, 1, cap - n - 1, f);
            n += got;
            if (got == 0)
                break;
        }
        fclose(f);
    }
    if (!s)
        return strdup("");
    s[n] = '\0';
    return s;
}

bool ih_file_contains(const char *path, const char *needle)
{
    char *s = ih_read_file(path);
    bool found = s && strstr(s, needle) != NULL;

    free(s);
    return found;
}

bool ih_logs_find(const char *const *marks, char *path, size_t path_size, char *text,
                  size_t size)
{
    DIR *d = opendir(H.root);
    struct dirent *e;
    bool found = false;

    if (!d)
        return false;
    while (!found && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char file[IH_PATH_MAX];
        char *s;

        if (n < 4 || strcmp(e->d_name + n - 4, ".err") != 0)
            continue;
        ih_path(file, sizeof(file), e->d_name);
        s = ih_read_file(file);
        for (size_t i = 0; marks[i] && !found; i++) {
            const char *hit = strstr(s, marks[i]);
            if (hit) {
                snprintf(path, path_size, "%s", file);
                snprintf(text, size, "%s", hit);
                found = true;
            }
        }
        free(s);
    }
    closedir(d);
    return found;
}

/* ---- ports ---- */

static bool port_free(uint16_t port, int type)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0)
        return false;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* No SO_REUSEADDR: a port in TIME_WAIT counts as taken. */
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

bool ih_udp_port_taken(uint16_t port)
{
    return !port_free(port, SOCK_DGRAM);
}

static bool slot_free(uint16_t base)
{
    for (uint16_t p = base; p < base + SLOT_PORTS; p++) {
        if (!port_free(p, SOCK_DGRAM) || !port_free(p, SOCK_STREAM))
            return false;
    }
    return true;
}

/* Picks a free slot of ports for @b, starting from one derived from the
 * pid (so parallel test processes start far apart) and moved on by
 * @attempt. Returns 0 or -EADDRINUSE. */
static int pick_ports(struct ih_bridge *b, unsigned attempt)
{
    unsigned slots = (PORT_HI - PORT_LO) / SLOT_PORTS;
    unsigned first = ((unsigned)getpid() * 7u + attempt * 131u + H.bridges * 17u) % slots;

    for (unsigned i = 0; i < SLOT_TRIES; i++) {
        uint16_t base = (uint16_t)(PORT_LO + ((first + i) % slots) * SLOT_PORTS);

        if (!slot_free(base))
            continue;
        b->media_port = base;
        b->api_port = (uint16_t)(base + 1);
        b->rtp_min = (uint16_t)(base + 2);
        b->rtp_max = (uint16_t)(base + 2 + IH_RTP_PORTS - 1);
        for (unsigned k = 0; k < IH_SPARE_PORTS; k++)
            b->spare[k] = (uint16_t)(base + 2 + IH_RTP_PORTS + k);
        b->overlay_port = (uint16_t)(base + SLOT_OVERLAY);
        snprintf(b->url, sizeof(b->url), "http://127.0.0.1:%u", b->api_port);
        return 0;
    }
    return -EADDRINUSE;
}

/* ---- the bridge ---- */

static int bridge_spawn(struct ih_bridge *b)
{
    char bin[IH_PATH_MAX], name[32], media[8], api[8], rmin[8], rmax[8], ovl[8];
    const char *argv[MAX_ARGS];
    size_t n = 0;

    snprintf(media, sizeof(media), "%u", b->media_port);
    snprintf(api, sizeof(api), "%u", b->api_port);
    snprintf(rmin, sizeof(rmin), "%u", b->rtp_min);
    snprintf(rmax, sizeof(rmax), "%u", b->rtp_max);
    snprintf(ovl, sizeof(ovl), "%u", b->overlay_port);
    argv[n++] = ih_bin(bin, sizeof(bin), "chorus-bridge");
    argv[n++] = "--state-dir";
    argv[n++] = b->state_dir;
    argv[n++] = "--media-addr";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--media-port";
    argv[n++] = media;
    argv[n++] = "--api-addr";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--api-port";
    argv[n++] = api;
    argv[n++] = "--rtp-port-min";
    argv[n++] = rmin;
    argv[n++] = "--rtp-port-max";
    argv[n++] = rmax;
    /* Every bridge a seed supernode of its own overlay, on its own port,
     * so parallel tests never meet on the default 33034. */
    argv[n++] = "--overlay-port";
    argv[n++] = ovl;
    argv[n++] = "--demo-room=";
    argv[n++] = "--no-realtime";
    for (size_t i = 0; b->extra && b->extra[i] && n < MAX_ARGS - 1; i++)
        argv[n++] = b->extra[i];
    argv[n] = NULL;
    b->starts++;
    snprintf(name, sizeof(name), "bridge%u-%u", H.bridges, b->starts);
    return ih_spawn(&b->proc, name, argv);
}

/* Polls /v1/health until it answers 200. Returns 0, -ECHILD when the
 * bridge exited, or -ETIMEDOUT. */
static int wait_health(struct ih_bridge *b)
{
    uint64_t deadline = ih_now_ms() + IH_HEALTH_TIMEOUT_MS;
    char url[128];

    snprintf(url, sizeof(url), "%s/v1/health", b->url);
    while (ih_now_ms() < deadline) {
        struct http_req req = {.url = url, .timeout_ms = 1000};
        struct http_resp resp;

        if (!ih_proc_running(&b->proc))
            return -ECHILD;
        http_do(&req, &resp);
        bool ok = resp.status == 200;
        http_resp_free(&resp);
        if (ok)
            return 0;
        ih_sleep_ms(HEALTH_POLL_MS);
    }
    return -ETIMEDOUT;
}

static int read_token(struct ih_bridge *b)
{
    char path[IH_PATH_MAX + 16];
    char *s;
    size_t n;

    snprintf(path, sizeof(path), "%s/api-token", b->state_dir);
    s = ih_read_file(path);
    n = strcspn(s, "\r\n");
    if (n == 0 || n >= sizeof(b->token)) {
        free(s);
        return -EBADMSG;
    }
    memcpy(b->token, s, n);
    b->token[n] = '\0';
    free(s);
    return 0;
}

static int bridge_up(struct ih_bridge *b)
{
    int rc = bridge_spawn(b);

    if (rc)
        return rc;
    rc = wait_health(b);
    if (rc == -ETIMEDOUT) {
        fprintf(stderr, "harness: bridge not healthy within %d ms (log: %s)\n",
                IH_HEALTH_TIMEOUT_MS, b->proc.err_path);
        kill_and_reap(&b->proc);
    }
    if (rc)
        return rc;
    return read_token(b);
}

/* Prints the end of the bridge's log (the file goes with the temporary
 * directory). */
static void show_log(const struct ih_bridge *b)
{
    char *s = ih_read_file(b->proc.err_path);
    size_t n = strlen(s);

    fprintf(stderr, "harness: the bridge's log ends:\n%s\n", n > 2000 ? s + n - 2000 : s);
    free(s);
}

int ih_bridge_start(struct ih_bridge *b, const char *const *extra_args)
{
    char name[32];
    int rc = -EADDRINUSE;

    memset(b, 0, sizeof(*b));
    b->extra = extra_args;
    H.bridges++;
    snprintf(name, sizeof(name), "state%u", H.bridges);
    ih_path(b->state_dir, sizeof(b->state_dir), name);
    /* A port can be taken between the probe and the bind: try fresh
     * ports a few times when the bridge exits at start-up. */
    for (unsigned attempt = 0; attempt < START_TRIES; attempt++) {
        if ((rc = pick_ports(b, attempt)) != 0)
            return rc;
        rc = bridge_up(b);
        if (rc != -ECHILD)
            break;
        fprintf(stderr, "harness: bridge exited at start-up (status %d); new ports\n",
                ih_proc_exit_code(&b->proc));
    }
    if (rc)
        show_log(b);
    return rc;
}

int ih_bridge_restart(struct ih_bridge *b)
{
    int rc;

    if (ih_proc_running(&b->proc))
        return -EBUSY;
    rc = bridge_up(b);
    if (rc)
        show_log(b);
    return rc;
}

const char *ih_bridge_log(const struct ih_bridge *b)
{
    return b->proc.err_path;
}

/* ---- HTTP ---- */

long ih_http(const struct ih_bridge *b, const char *method, const char *path,
             const char *json_body, json_t **out)
{
    char url[1024];
    struct http_req req = {
        .method = method,
        .url = url,
        .token = b->token,
        .content_type = json_body ? "application/json" : NULL,
        .body = json_body,
        .body_len = json_body ? strlen(json_body) : 0,
        .timeout_ms = 5000,
    };
    struct http_resp resp;
    long status;

    snprintf(url, sizeof(url), "%s%s", b->url, path);
    http_do(&req, &resp);
    status = resp.curl_rc == 0 ? resp.status : -1;
    if (out)
        *out = http_json(&resp);
    http_resp_free(&resp);
    return status;
}

int ih_participant_count(const struct ih_bridge *b, const char *room)
{
    char path[256];
    json_t *j = NULL;
    int n = -1;

    snprintf(path, sizeof(path), "/v1/rooms/%s/participants", room);
    if (ih_http(b, "GET", path, NULL, &j) == 200 && j) {
        json_t *list = json_object_get(j, "participants");
        if (json_is_array(list))
            n = (int)json_array_size(list);
    }
    json_decref(j);
    return n;
}

int ih_wait_participants(const struct ih_bridge *b, const char *room, int n, int timeout_ms)
{
    uint64_t deadline = ih_now_ms() + (uint64_t)timeout_ms;

    do {
        if (ih_participant_count(b, room) == n)
            return 0;
        ih_sleep_ms(20);
    } while (ih_now_ms() < deadline);
    return -ETIMEDOUT;
}

uint32_t ih_participant_id(const struct ih_bridge *b, const char *room, const char *name)
{
    char path[256];
    json_t *j = NULL, *p;
    size_t i;
    uint32_t id = 0;

    snprintf(path, sizeof(path), "/v1/rooms/%s/participants", room);
    if (ih_http(b, "GET", path, NULL, &j) == 200 && j) {
        json_array_foreach(json_object_get(j, "participants"), i, p) {
            const char *dn = json_string_value(json_object_get(p, "display_name"));
            if (dn && strcmp(dn, name) == 0)
                id = (uint32_t)json_integer_value(json_object_get(p, "id"));
        }
    }
    json_decref(j);
    return id;
}

double ih_metric(const struct ih_bridge *b, const char *name)
{
    char url[128];
    struct http_req req = {.url = url, .token = b->token, .timeout_ms = 5000};
    struct http_resp resp;
    size_t n = strlen(name);
    double v = -1;

    snprintf(url, sizeof(url), "%s/metrics", b->url);
    http_do(&req, &resp);
    for (const char *line = resp.body; resp.status == 200 && line && *line;) {
        if (strncmp(line, name, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    http_resp_free(&resp);
    return v;
}

/* ---- clients ---- */

const char *ih_client_wav(char *buf, size_t size, const char *name)
{
    char file[64];

    snprintf(file, sizeof(file), "%s.wav", name);
    return ih_path(buf, size, file);
}

int ih_client_spawn(struct ih_proc *p, const struct ih_bridge *b, const struct ih_client *c)
{
    char bin[IH_PATH_MAX], wav[IH_PATH_MAX], bridge[32], tone[32], level[32], dur[32];
    const char *argv[MAX_ARGS];
    size_t n = 0;

    snprintf(bridge, sizeof(bridge), "127.0.0.1:%u", b->media_port);
    snprintf(dur, sizeof(dur), "%.3f", c->duration_s);
    argv[n++] = ih_bin(bin, sizeof(bin), "chorus-client");
    argv[n++] = "--bridge";
    argv[n++] = bridge;
    argv[n++] = "--room";
    argv[n++] = c->room;
    argv[n++] = "--name";
    argv[n++] = c->name;
    argv[n++] = "--duration";
    argv[n++] = dur;
    argv[n++] = "--out";
    argv[n++] = ih_client_wav(wav, sizeof(wav), c->name);
    argv[n++] = "--json";
    if (c->tone_hz > 0) {
        snprintf(tone, sizeof(tone), "%g", c->tone_hz);
        argv[n++] = "--tone";
        argv[n++] = tone;
    } else {
        argv[n++] = "--silence";
    }
    if (c->level_db < 0) {
        snprintf(level, sizeof(level), "%g", c->level_db);
        argv[n++] = "--level";
        argv[n++] = level;
    }
    if (c->tcp)
        argv[n++] = "--tcp";
    if (c->pin) {
        argv[n++] = "--pin";
        argv[n++] = c->pin;
    }
    if (c->expect_audio)
        argv[n++] = "--expect-audio";
    argv[n] = NULL;
    return ih_spawn(p, c->name, argv);
}

/* ---- audio ---- */

int ih_wav_load(const char *path, struct ta_pcm *pcm)
{
    ta_pcm_init(pcm, 48000);
    return ta_wav_read(path, pcm);
}

double ih_tone(const struct ta_pcm *pcm, uint32_t from_ms, uint32_t to_ms, double hz)
{
    uint32_t end = to_ms ? to_ms : ih_pcm_ms(pcm);
    double sum = 0;
    unsigned n = 0;

    for (uint32_t t = from_ms; t + IH_TONE_BLOCK_MS <= end; t += IH_TONE_BLOCK_MS, n++)
        sum += pow(10, ta_pcm_tone_db(pcm, t, t + IH_TONE_BLOCK_MS, hz) / 10);
    return n > 0 && sum > 0 ? 10 * log10(sum / n) : TA_DB_FLOOR;
}

uint32_t ih_pcm_ms(const struct ta_pcm *pcm)
{
    return pcm->rate ? (uint32_t)(pcm->n * 1000u / pcm->rate) : 0;
}

double ih_tone_coherent(const struct ta_pcm *pcm, uint32_t from_ms, uint32_t to_ms, double hz)
{
    return ta_pcm_tone_db(pcm, from_ms, to_ms, hz);
}

/* ---- raw sockets ---- */

int ih_udp_socket(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
