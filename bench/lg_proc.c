/*
 * lg_proc.c: see lg_proc.h.
 */
#include "lg_proc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Reads the first line of @path into @buf without its newline. */
static int read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    int rc = 0;

    if (!f)
        return -errno;
    if (!fgets(buf, (int)cap, f))
        rc = -EIO;
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return rc;
}

pid_t lg_proc_find(const char *name)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0, self = getpid();
    char path[64], comm[LG_PROC_COMM_LEN + 1];

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0 || pid == self)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        if (read_line(path, comm, sizeof(comm)) != 0 || strcmp(comm, name) != 0)
            continue;
        if (found) {
            found = -EEXIST;
            break;
        }
        found = pid;
    }
    closedir(d);
    return found;
}

/* utime + stime of one /proc/.../stat file, in ns; comm copied out. */
static int stat_cpu(const char *path, uint64_t *ns, char *comm, size_t commcap)
{
    static long tck;
    char buf[1024], *open_p, *close_p;
    unsigned long long ut, st;

    if (read_line(path, buf, sizeof(buf)) != 0)
        return -ENOENT;
    open_p = strchr(buf, '(');
    close_p = strrchr(buf, ')');
    if (!open_p || !close_p || close_p < open_p)
        return -EPROTO;
    if (comm)
        snprintf(comm, commcap, "%.*s", (int)(close_p - open_p - 1), open_p + 1);
    /* After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime(14) stime(15), proc(5). */
    if (sscanf(close_p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -EPROTO;
    if (!tck)
        tck = sysconf(_SC_CLK_TCK);
    *ns = (ut + st) * (1000000000ull / (unsigned long long)tck);
    return 0;
}

/* Adds one thread's time to the role it plays. */
static void account_thread(struct lg_cpu_sample *s, pid_t pid, pid_t tid, uint64_t ns,
                           const char *comm)
{
    if (tid == pid) {
        s->loop_ns = ns;
    } else if (strncmp(comm, "chorus-mix", 10) == 0) {
        s->mix_ns += ns;
        s->n_mix++;
    } else if (ns >= s->busiest_other_ns) {
        s->busiest_other_ns = ns;
        snprintf(s->busiest_other, sizeof(s->busiest_other), "%.16s", comm);
    }
}

void lg_proc_cpu_sample(pid_t pid, struct lg_cpu_sample *s)
{
    char path[96], comm[LG_PROC_COMM_LEN + 1];
    struct dirent *e;
    DIR *d;
    int n = 0;

    memset(s, 0, sizeof(*s));
    s->wall_ns = mono_ns();
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (stat_cpu(path, &s->total_ns, NULL, 0) != 0)
        return;
    s->ok = true;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if (!(d = opendir(path)))
        return;
    while ((e = readdir(d)) != NULL && n < LG_PROC_MAX_THREADS) {
        pid_t tid = (pid_t)atoi(e->d_name);
        uint64_t ns;

        if (tid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
        if (stat_cpu(path, &ns, comm, sizeof(comm)) == 0) {
            account_thread(s, pid, tid, ns, comm);
            n++;
        }
    }
    closedir(d);
}

void lg_proc_host_cpu(uint64_t *busy_ns, uint64_t *total_ns)
{
    unsigned long long v[8] = {0};
    uint64_t tick_ns = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
    char line[512];

    *busy_ns = *total_ns = 0;
    if (read_line("/proc/stat", line, sizeof(line)) != 0 ||
        sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) < 4)
        return;
    /* user nice system idle iowait irq softirq steal */
    *busy_ns = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * tick_ns;
    *total_ns = *busy_ns + (v[3] + v[4]) * tick_ns;
}

uint64_t lg_proc_self_cpu_ns(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/* Adds the drops of the sockets in @want (a 65536-bit set) from one
 * /proc/net/udp* file. */
static uint64_t drops_in(const char *path, const uint8_t *want)
{
    FILE *f = fopen(path, "re");
    char line[512];
    uint64_t sum = 0;

    if (!f)
        return 0;
    if (!fgets(line, sizeof(line), f)) { /* header */
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');          /* after "sl" */
        char *port_p = colon ? strchr(colon + 1, ':') : NULL; /* local port */
        size_t len = strlen(line);
        char *last;
        unsigned long port;

        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\n'))
            line[--len] = '\0'; /* the kernel pads lines with blanks */
        last = strrchr(line, ' ');
        if (!port_p || !last)
            continue;
        port = strtoul(port_p + 1, NULL, 16);
        if (port < 65536 && (want[port >> 3] & (1u << (port & 7))))
            sum += strtoull(last + 1, NULL, 10);
    }
    fclose(f);
    return sum;
}

uint64_t lg_proc_udp_drops(const uint16_t *ports, size_t n)
{
    uint8_t *want = calloc(65536 / 8, 1);
    uint64_t sum;

    if (!want)
        return 0;
    for (size_t i = 0; i < n; i++)
        want[ports[i] >> 3] |= (uint8_t)(1u << (ports[i] & 7));
    sum = drops_in("/proc/net/udp", want) + drops_in("/proc/net/udp6", want);
    free(want);
    return sum;
}

uint64_t lg_proc_udp_rcvbuf_errors(void)
{
    FILE *f = fopen("/proc/net/snmp", "re");
    char names[1024], values[1024];
    uint64_t v = 0;

    if (!f)
        return 0;
    while (fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
        char *np, *vp, *ns = NULL, *vs = NULL;

        if (strncmp(names, "Udp:", 4) != 0)
            continue;
        np = strtok_r(names, " \n", &ns);
        vp = strtok_r(values, " \n", &vs);
        while (np && vp) {
            if (strcmp(np, "RcvbufErrors") == 0) {
                v = strtoull(vp, NULL, 10);
                break;
            }
            np = strtok_r(NULL, " \n", &ns);
            vp = strtok_r(NULL, " \n", &vs);
        }
        break;
    }
    fclose(f);
    return v;
}
