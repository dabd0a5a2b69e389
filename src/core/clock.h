/*
 * clock.h — the one monotonic clock every part of corral reads: request
 * durations, deadlines, idle and drain timers, uptime. CLOCK_MONOTONIC does
 * not jump with the wall clock (NTP steps, an operator's `date`), so no
 * timeout fires early or never because the time of day changed.
 */
#ifndef CORRAL_CLOCK_H
#define CORRAL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic microseconds. */
static inline uint64_t clock_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Monotonic milliseconds. */
static inline uint64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
