/*
 * lg_proc.h: what chorus-loadgen reads from /proc about the bridge under
 * test: the CPU time of the process and of its threads (to tell the loop
 * thread, the mixing threads "chorus-mix<N>" and the rest apart), and the
 * kernel's per-socket UDP drop counters (/proc/net/udp, "drops": datagrams
 * that arrived at a full receive buffer).
 *
 * Thread: any (no state outside the caller's structs).
 */
#ifndef LG_PROC_H
#define LG_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    LG_PROC_MAX_THREADS = 64,   /* threads of the bridge looked at */
    LG_PROC_COMM_LEN = 16,      /* TASK_COMM_LEN */
};

/* CPU times of a process, split by thread role. Times in ns. */
struct lg_cpu_sample {
    bool ok;                    /* the process was readable */
    uint64_t wall_ns;           /* CLOCK_MONOTONIC when sampled */
    uint64_t total_ns;          /* utime + stime, whole process */
    uint64_t loop_ns;           /* the main thread (tid == pid): libuv loop */
    uint64_t mix_ns;            /* threads named chorus-mix* */
    unsigned n_mix;             /* how many such threads */
    uint64_t busiest_other_ns;  /* for the report: largest other thread */
    char busiest_other[LG_PROC_COMM_LEN + 1];
};

/* Finds the one process whose comm is @name. Returns its pid, 0 when there
 * is none, or -EEXIST when there are several (the caller must then be
 * told which one, e.g. --bridge-pid). */
pid_t lg_proc_find(const char *name);

/* Samples @pid's CPU times into @s (s->ok false when it has gone). */
void lg_proc_cpu_sample(pid_t pid, struct lg_cpu_sample *s);

/* The host's CPU time from /proc/stat, all CPUs together, ns: busy (not
 * idle or iowait) and total. Zeros when unreadable. */
void lg_proc_host_cpu(uint64_t *busy_ns, uint64_t *total_ns);

/* Our own CPU time (user + system), ns. */
uint64_t lg_proc_self_cpu_ns(void);

/*
 * Sums the "drops" column of /proc/net/udp and /proc/net/udp6 over the
 * sockets bound to one of the @n local ports in @ports (host order; the
 * array need not be sorted). Returns the sum, or 0 when the files cannot
 * be read.
 */
uint64_t lg_proc_udp_drops(const uint16_t *ports, size_t n);

/* The RcvbufErrors counter of /proc/net/snmp (all UDP sockets of the
 * network namespace), or 0. */
uint64_t lg_proc_udp_rcvbuf_errors(void);

#endif /* LG_PROC_H */
