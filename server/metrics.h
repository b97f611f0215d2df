/*
 * /metrics: Prometheus text exposition with etcd's metric names, so that
 * dashboards and alerts written for etcd work on moor.
 *
 * Counters and histograms are updated from the loop and the worker threads
 * with atomic adds; rendering reads them without a lock (each value is
 * read atomically; a scrape may see one histogram a few observations ahead
 * of another, as with any Prometheus client).
 */
#ifndef MOOR_SERVER_METRICS_H
#define MOOR_SERVER_METRICS_H

#include "common/buf.h"

#include <stdint.h>

/* Buckets in seconds: etcd's disk histograms use 0.001 * 2^k, k = 0..13. */
#define SRV_HIST_BUCKETS 14

struct srv_hist {
	int fine; /* set before use: 1 for request latencies (0.1 ms base) */
	uint64_t bucket[SRV_HIST_BUCKETS]; /* count <= bound (not cumulative) */
	uint64_t inf;                      /* above the last bound */
	uint64_t count;
	uint64_t sum_ns;
};

/* Observe a duration in nanoseconds. Thread-safe. */
void srv_hist_observe(struct srv_hist *h, uint64_t ns);
/* Render as a Prometheus histogram `name` with optional labels ("" or
 * `grpc_method="Range"`); buckets bounded by 0.0001 * 2^k seconds when
 * h->fine, else 0.001 * 2^k. */
int srv_hist_render(const struct srv_hist *h, struct moor_buf *out, const char *name,
                    const char *labels);

static inline void srv_counter_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}
static inline uint64_t srv_counter_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Help and type lines for a metric. */
int srv_metric_header(struct moor_buf *out, const char *name, const char *type, const char *help);

#endif
