/*
 * Log-linear latency histogram (see hist.h). Bucket i < 64 holds the value i;
 * above, a value v with its top bit at position e (e >= 6) lands in
 * 64 + (e - 6) * 32 + (the 5 bits below the top bit).
 */
#include "bench/moorbench/hist.h"

#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

unsigned hist_index(uint64_t ns)
{
	if (ns < 2 * HIST_SUB)
		return (unsigned)ns;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns);
	unsigned m = (unsigned)(ns >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return 2 * HIST_SUB + (e - HIST_SUB_BITS - 1) * HIST_SUB + m;
}

void hist_bounds(unsigned idx, uint64_t *low, uint64_t *high)
{
	if (idx < 2 * HIST_SUB) {
		*low = *high = idx;
		return;
	}
	unsigned e = (idx - 2 * HIST_SUB) / HIST_SUB + HIST_SUB_BITS + 1;
	uint64_t m = (idx - 2 * HIST_SUB) % HIST_SUB + HIST_SUB;
	unsigned shift = e - HIST_SUB_BITS;
	*low = m << shift;
	*high = *low + ((uint64_t)1 << shift) - 1;
}

void hist_record(struct hist *h, uint64_t ns)
{
	h->count[hist_index(ns)]++;
	h->total++;
	h->sum_ns += (double)ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->count[i] += src->count[i];
	dst->total += src->total;
	dst->sum_ns += src->sum_ns;
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (h->total == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank >= h->total)
		return h->max_ns; /* the largest value is known exactly */
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			uint64_t lo, hi;
			hist_bounds(i, &lo, &hi);
			uint64_t v = lo + (hi - lo) / 2;
			if (v < h->min_ns)
				v = h->min_ns;
			if (v > h->max_ns)
				v = h->max_ns;
			return v;
		}
	}
	return h->max_ns;
}
