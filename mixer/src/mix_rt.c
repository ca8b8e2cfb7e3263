/*
 * mix_rt.c: the real-time flag, monotonic clock and pacing helpers.
 */
#include "mix_rt.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

static _Thread_local unsigned rt_depth;

bool mix_rt_active(void)
{
    return rt_depth > 0;
}

void mix_rt_enter(void)
{
    rt_depth++;
}

void mix_rt_leave(void)
{
    if (rt_depth > 0)
        rt_depth--;
}

uint64_t mix_rt_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void mix_rt_sleep_until(uint64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000ull),
        .tv_nsec = (long)(deadline_ns % 1000000000ull),
    };

    /* An absolute deadline: a signal that interrupts the sleep does not
     * stretch the period, we simply sleep again to the same instant. */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int mix_rt_promote(int priority)
{
    struct sched_param sp = {.sched_priority = priority};
    int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

    return rc == 0 ? 0 : -rc;
}
