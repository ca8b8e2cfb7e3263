/*
 * mix_rt.h: real-time thread helpers shared by the engine and its tests.
 *
 * A thread-local flag marks code that runs under the real-time rules (no
 * allocation, no locks, no blocking syscalls, no synchronous logging). The
 * engine sets it for the whole life of a mixing thread and around every
 * manually driven cycle, so a test can interpose malloc/free/pthread locks and
 * fail when any of them is called while the flag is set.
 */
#ifndef MIX_RT_H
#define MIX_RT_H

#include <stdbool.h>
#include <stdint.h>

/* Thread: any. True while the calling thread is inside real-time code. */
bool mix_rt_active(void);

/* Thread: any. Mark entry to / exit from real-time code (nests). */
void mix_rt_enter(void);
void mix_rt_leave(void);

/* Thread: any. CLOCK_MONOTONIC now, in nanoseconds. */
uint64_t mix_rt_now_ns(void);

/* Thread: rt. Sleeps until the absolute CLOCK_MONOTONIC time @deadline_ns
 * (clock_nanosleep with TIMER_ABSTIME, restarted on EINTR). */
void mix_rt_sleep_until(uint64_t deadline_ns);

/* Thread: the thread to promote. Asks for SCHED_FIFO at @priority. Returns 0,
 * or a negative errno (typically -EPERM) when the system refuses; the caller
 * carries on at normal priority. */
int mix_rt_promote(int priority);

#endif /* MIX_RT_H */
