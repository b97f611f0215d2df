/*
 * The monotonic clock, for server/, bench/ and tests only: raft/, wal/, kv/
 * and watch/ never read a clock (scripts/check-deps.sh enforces it); they are
 * given time as input.
 */
#ifndef MOOR_COMMON_CLOCK_H
#define MOOR_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t moor_clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t moor_clock_mono_ms(void)
{
	return moor_clock_mono_ns() / 1000000u;
}

#endif
