/*
 * A latency histogram with log-linear buckets, in the manner of HdrHistogram:
 * values below 64 ns have a bucket each; above, every power of two is cut in
 * 32 equal sub-buckets, so a reported percentile is within 1/32 (3.1 %) of
 * the recorded value. Fixed size (1920 counters), no allocation, recording is
 * one clz and an increment. Not thread-safe: each generator thread owns one
 * and they are merged at the end.
 */
#ifndef MOORBENCH_HIST_H
#define MOORBENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (2 * HIST_SUB + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t total;
	uint64_t min_ns;
	uint64_t max_ns;
	double sum_ns;
};

/* Empties h. */
void hist_reset(struct hist *h);

/* Records one value in nanoseconds. */
void hist_record(struct hist *h, uint64_t ns);

/* Adds every count of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at quantile q (0 < q <= 1): the midpoint of the bucket holding
 * the ceil(q * total)-th smallest value, clamped to [min, max]; the exact
 * maximum when that is the largest value; 0 if empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* Bucket index of a value and the [low, high] range a bucket covers
 * (exposed for the tests). */
unsigned hist_index(uint64_t ns);
void hist_bounds(unsigned idx, uint64_t *low, uint64_t *high);

#endif
